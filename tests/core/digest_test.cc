#include "regfs/core/digest.h"

#include <gtest/gtest.h>

namespace regfs {
namespace {

const char* kHelloSha256 =
    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

TEST(DigestTest, ParsesCanonicalSha256) {
  auto d = Digest::Parse(kHelloSha256);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->algorithm(), "sha256");
  EXPECT_EQ(d->ToString(), kHelloSha256);
}

TEST(DigestTest, RejectsMalformed) {
  for (const char* bad :
       {"", "sha256", "sha256:", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:xyz",
        "sha256:../../etc/passwd",
        "sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982",
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b98245"}) {
    auto d = Digest::Parse(bad);
    EXPECT_FALSE(d.ok()) << bad;
    if (!d.ok()) {
      EXPECT_EQ(d.status().reason(), Status::Reason::kDigestInvalid) << bad;
    }
  }
}

TEST(DigestTest, AcceptsSha512) {
  std::string hex(128, 'a');
  EXPECT_TRUE(Digest::Parse("sha512:" + hex).ok());
}

TEST(DigestHasherTest, StreamingEqualsOneShot) {
  DigestHasher h;
  h.Update("hel", 3);
  h.Update("lo", 2);
  EXPECT_EQ(h.Current().ToString(), kHelloSha256);
  EXPECT_EQ(Digest::Sha256Of("hello").ToString(), kHelloSha256);
  EXPECT_EQ(h.bytes_hashed(), 5u);
}

TEST(DigestHasherTest, CurrentDoesNotDisturbTheRunningHash) {
  DigestHasher h;
  h.Update("hel", 3);
  (void)h.Current();
  DigestHasher copy = h;
  h.Update("lo", 2);
  copy.Update("lo", 2);
  EXPECT_EQ(h.Current(), copy.Current());
  EXPECT_EQ(h.Current().ToString(), kHelloSha256);
}

TEST(ConstantTimeEqualsTest, ComparesContent) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secrets"));
}

}  // namespace
// Hash states in Go's MarshalBinary format (what registry:2 keeps in an upload's
// hashstates/): vectors printed by Go 1.19's crypto/sha256 and crypto/sha512 after writing
// "regfs" 13 times (65 bytes: one full SHA-256 block and one pending byte).
TEST(DigestHasherTest, SavedStateIsGoMarshalBinary) {
  std::string input;
  for (int i = 0; i < 13; ++i) input += "regfs";
  DigestHasher h256("sha256");
  h256.Update(input.data(), input.size());
  EXPECT_EQ(LowerHex(h256.SaveState()),
            "73686103c6297cdfe23eec6dcaef3ddefe924a9f4aa0ccbe2d2a1ffde083c057b73b6b9173000000"
            "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "00000000000000000000000000000000000000000000000000000041");
  DigestHasher h512("sha512");
  h512.Update(input.data(), input.size());
  EXPECT_EQ(LowerHex(h512.SaveState()),
            "736861076a09e667f3bcc908bb67ae8584caa73b3c6ef372fe94f82ba54ff53a5f1d36f1510e527f"
            "ade682d19b05688c2b3e6c1f1f83d9abfb41bd6b5be0cd19137e2179726567667372656766737265"
            "67667372656766737265676673726567667372656766737265676673726567667372656766737265"
            "67667372656766737265676673000000000000000000000000000000000000000000000000000000"
            "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "00000041");
}

TEST(DigestHasherTest, RestoredStateContinuesTheHash) {
  std::string data;
  for (int i = 0; i < 3000; ++i) data.push_back(static_cast<char>(i * 31 % 256));
  for (const char* algorithm : {"sha256", "sha512"}) {
    for (size_t cut : {0, 1, 63, 64, 65, 127, 128, 129, 1000, 3000}) {
      DigestHasher first(algorithm);
      first.Update(data.data(), cut);
      auto restored = DigestHasher::RestoreState(algorithm, first.SaveState());
      ASSERT_TRUE(restored.has_value()) << algorithm << " at " << cut;
      EXPECT_EQ(restored->bytes_hashed(), cut);
      restored->Update(data.data() + cut, data.size() - cut);
      DigestHasher whole(algorithm);
      whole.Update(data.data(), data.size());
      EXPECT_EQ(restored->Current(), whole.Current()) << algorithm << " at " << cut;
    }
  }
  DigestHasher h("sha256");
  EXPECT_FALSE(DigestHasher::RestoreState("sha512", h.SaveState()).has_value());
  EXPECT_FALSE(DigestHasher::RestoreState("sha256", h.SaveState().substr(1)).has_value());
  EXPECT_FALSE(DigestHasher::RestoreState("md5", h.SaveState()).has_value());
}

}  // namespace regfs
