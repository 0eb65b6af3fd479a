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
}  // namespace regfs
