#include "regfs/core/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace regfs {
namespace {

size_t HexLengthFor(std::string_view algorithm) {
  if (algorithm == "sha256") return 64;
  if (algorithm == "sha512") return 128;
  return 0;
}

}  // namespace

std::string LowerHex(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 0xf];
  }
  return out;
}

Result<Digest> Digest::Parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("digest has no algorithm prefix",
                                   Status::Reason::kDigestInvalid);
  }
  std::string_view alg = text.substr(0, colon);
  std::string_view hex = text.substr(colon + 1);
  size_t want = HexLengthFor(alg);
  if (want == 0) {
    return Status::InvalidArgument("unsupported digest algorithm", Status::Reason::kDigestInvalid);
  }
  if (hex.size() != want) {
    return Status::InvalidArgument("digest has the wrong length", Status::Reason::kDigestInvalid);
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Status::InvalidArgument("digest is not lower-case hex",
                                     Status::Reason::kDigestInvalid);
    }
  }
  return Digest(std::string(alg), std::string(hex));
}

Digest Digest::Sha256Of(std::string_view bytes) {
  DigestHasher h("sha256");
  h.Update(bytes.data(), bytes.size());
  return h.Current();
}

struct DigestHasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

DigestHasher::DigestHasher(const std::string& algorithm)
    : ctx_(std::make_unique<Ctx>()), algorithm_(algorithm) {
  const EVP_MD* md = algorithm == "sha512" ? EVP_sha512() : EVP_sha256();
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, md, nullptr) != 1) {
    throw std::runtime_error("OpenSSL digest initialisation failed");
  }
}

DigestHasher::~DigestHasher() = default;
DigestHasher::DigestHasher(DigestHasher&&) noexcept = default;
DigestHasher& DigestHasher::operator=(DigestHasher&&) noexcept = default;

DigestHasher::DigestHasher(const DigestHasher& other)
    : ctx_(std::make_unique<Ctx>()), algorithm_(other.algorithm_), bytes_(other.bytes_) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_MD_CTX_copy_ex(ctx_->md, other.ctx_->md) != 1) {
    throw std::runtime_error("OpenSSL digest copy failed");
  }
}

DigestHasher& DigestHasher::operator=(const DigestHasher& other) {
  if (this != &other) {
    DigestHasher copy(other);
    *this = std::move(copy);
  }
  return *this;
}

void DigestHasher::Update(const void* data, size_t size) {
  EVP_DigestUpdate(ctx_->md, data, size);
  bytes_ += size;
}

Digest DigestHasher::Current() const {
  // Finalising consumes an EVP context, so finalise a copy and keep ours running.
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, ctx_->md);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(copy, out, &len);
  EVP_MD_CTX_free(copy);
  return *Digest::Parse(algorithm_ + ":" + LowerHex({reinterpret_cast<const char*>(out), len}));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace regfs
