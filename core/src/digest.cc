#include "regfs/core/digest.h"

// SHA256_Init and friends are deprecated in OpenSSL 3 (see DigestHasher::Ctx).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstring>
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

// The low-level SHA-2 contexts, not EVP's: their state can be written out and read back
// (SaveState), which EVP contexts do not allow. OpenSSL 3 deprecates these functions but
// keeps them, on the same assembly the EVP providers use.
struct DigestHasher::Ctx {
  bool sha512 = false;
  SHA256_CTX c256;
  SHA512_CTX c512;
};

namespace {

constexpr std::string_view kMagic256 = "sha\x03";
constexpr std::string_view kMagic512 = "sha\x07";

void PutBigEndian(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetBigEndian(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[at + i]);
  return v;
}

}  // namespace

DigestHasher::DigestHasher(const std::string& algorithm)
    : ctx_(std::make_unique<Ctx>()), algorithm_(algorithm) {
  ctx_->sha512 = algorithm == "sha512";
  if (ctx_->sha512 ? SHA512_Init(&ctx_->c512) != 1 : SHA256_Init(&ctx_->c256) != 1) {
    throw std::runtime_error("OpenSSL digest initialisation failed");
  }
}

DigestHasher::~DigestHasher() = default;
DigestHasher::DigestHasher(DigestHasher&&) noexcept = default;
DigestHasher& DigestHasher::operator=(DigestHasher&&) noexcept = default;

DigestHasher::DigestHasher(const DigestHasher& other)
    : ctx_(std::make_unique<Ctx>(*other.ctx_)), algorithm_(other.algorithm_), bytes_(other.bytes_) {}

DigestHasher& DigestHasher::operator=(const DigestHasher& other) {
  if (this != &other) {
    DigestHasher copy(other);
    *this = std::move(copy);
  }
  return *this;
}

void DigestHasher::Update(const void* data, size_t size) {
  if (ctx_->sha512) {
    SHA512_Update(&ctx_->c512, data, size);
  } else {
    SHA256_Update(&ctx_->c256, data, size);
  }
  bytes_ += size;
}

Digest DigestHasher::Current() const {
  // Finalising consumes a context, so finalise a copy and keep ours running.
  Ctx copy = *ctx_;
  unsigned char out[SHA512_DIGEST_LENGTH];
  size_t len = 0;
  if (copy.sha512) {
    SHA512_Final(out, &copy.c512);
    len = SHA512_DIGEST_LENGTH;
  } else {
    SHA256_Final(out, &copy.c256);
    len = SHA256_DIGEST_LENGTH;
  }
  return *Digest::Parse(algorithm_ + ":" + LowerHex({reinterpret_cast<const char*>(out), len}));
}

// Go's layout: magic, the state words big-endian, the pending block zero-padded to its full
// size, the length in bytes. OpenSSL keeps pending bytes in `data` in input order.
std::string DigestHasher::SaveState() const {
  std::string out;
  if (ctx_->sha512) {
    const SHA512_CTX& c = ctx_->c512;
    out.append(kMagic512);
    for (uint64_t h : c.h) PutBigEndian(&out, h, 8);
    const size_t pending = bytes_ % SHA512_CBLOCK;
    out.append(reinterpret_cast<const char*>(c.u.p), pending);
    out.append(SHA512_CBLOCK - pending, '\0');
  } else {
    const SHA256_CTX& c = ctx_->c256;
    out.append(kMagic256);
    for (unsigned int h : c.h) PutBigEndian(&out, h, 4);
    const size_t pending = bytes_ % SHA256_CBLOCK;
    out.append(reinterpret_cast<const char*>(c.data), pending);
    out.append(SHA256_CBLOCK - pending, '\0');
  }
  PutBigEndian(&out, bytes_, 8);
  return out;
}

std::optional<DigestHasher> DigestHasher::RestoreState(const std::string& algorithm,
                                                       std::string_view state) {
  const bool sha512 = algorithm == "sha512";
  if (!sha512 && algorithm != "sha256") return std::nullopt;
  const std::string_view magic = sha512 ? kMagic512 : kMagic256;
  const int word = sha512 ? 8 : 4;
  const size_t block = sha512 ? SHA512_CBLOCK : SHA256_CBLOCK;
  if (state.size() != magic.size() + 8 * word + block + 8 || !state.starts_with(magic)) {
    return std::nullopt;
  }
  DigestHasher hasher(algorithm);
  size_t at = magic.size();
  const uint64_t length = GetBigEndian(state, magic.size() + 8 * word + block, 8);
  const size_t pending = length % block;
  if (sha512) {
    SHA512_CTX& c = hasher.ctx_->c512;
    for (auto& h : c.h) { h = GetBigEndian(state, at, 8); at += 8; }
    std::memcpy(c.u.p, state.data() + at, pending);
    c.Nl = length << 3;
    c.Nh = length >> 61;
    c.num = static_cast<unsigned int>(pending);
  } else {
    SHA256_CTX& c = hasher.ctx_->c256;
    for (auto& h : c.h) { h = static_cast<unsigned int>(GetBigEndian(state, at, 4)); at += 4; }
    std::memcpy(c.data, state.data() + at, pending);
    c.Nl = static_cast<unsigned int>(length << 3);
    c.Nh = static_cast<unsigned int>(length >> 29);
    c.num = static_cast<unsigned int>(pending);
  }
  hasher.bytes_ = length;
  return hasher;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) ==
      nullptr) {
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace regfs
