#include "regfs/core/names.h"

#include <gtest/gtest.h>

namespace regfs {
namespace {

TEST(RepositoryNameTest, AcceptsSpecGrammar) {
  for (const char* good : {"a", "library/ubuntu", "team/app", "a/b/c/d", "my-app", "my__app",
                           "my.app", "a--b", "x0/y_1/z.2"}) {
    EXPECT_TRUE(ValidateRepositoryName(good).ok()) << good;
  }
}

TEST(RepositoryNameTest, RejectsTraversalCaseAndReservedComponents) {
  for (const char* bad : {"",   "..",    "a/..", "../a",    "a/../b",       "A",     "Team/app",
                          "/a", "a/",    "a//b", "_layers", "a/_manifests", "a/.b",  "a-",
                          "-a", "a___b", "a..b", "a b",     "a\\b",         "a%2fb", "a\nb"}) {
    Status s = ValidateRepositoryName(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.reason(), Status::Reason::kNameInvalid) << bad;
  }
  EXPECT_FALSE(ValidateRepositoryName(std::string(256, 'a')).ok());
  EXPECT_TRUE(ValidateRepositoryName(std::string(255, 'a')).ok());
}

TEST(TagTest, AcceptsSpecGrammar) {
  for (const char* good : {"latest", "v1.2.3", "_x", "A-b_c.D", "0"}) {
    EXPECT_TRUE(ValidateTag(good).ok()) << good;
  }
  EXPECT_TRUE(ValidateTag(std::string(128, 'a')).ok());
}

TEST(TagTest, RejectsBadTags) {
  for (const char* bad : {"", "-bad", ".bad", "a/b", "..", "a:b", "a b"}) {
    Status s = ValidateTag(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.reason(), Status::Reason::kTagInvalid);
  }
  EXPECT_FALSE(ValidateTag(std::string(129, 'a')).ok());
}

}  // namespace
}  // namespace regfs
