// GET /v2/_catalog: sorted repository names (nested ones included) and
// n/last pagination with Link. Each test gets its own server so that the
// catalog holds exactly the repositories the test pushed.
#include "registry_test.h"

namespace regfs::testing {
namespace {

class CatalogTest : public RegistryTest {
 protected:
  static void SetUpTestSuite() {}
  static void TearDownTestSuite() {}
  void SetUp() override {
    StartSharedServer({});
    RegistryTest::SetUp();
  }
  void TearDown() override {
    RegistryTest::TearDown();
    StopSharedServer();
  }

  void PushRepositories(const std::vector<std::string>& repos) {
    for (const std::string& repo : repos) {
      ASSERT_TRUE(PushImage(http(), repo, "latest", media::kOciManifest, repo, nullptr));
    }
  }

  std::vector<std::string> Page(const std::string& target, HttpResponse* response) {
    *response = http().Get(target);
    EXPECT_EQ(response->status, 200) << response->Describe();
    EXPECT_EQ(response->MediaType(), "application/json");
    auto repos = StringArray(ParseObject(response->body), "repositories");
    EXPECT_TRUE(repos) << "no \"repositories\" string array: " << response->body;
    return repos.value_or(std::vector<std::string>{});
  }

  void ExpectNextLink(const HttpResponse& response, int n, const std::string& last) {
    std::optional<std::string> next = NextLink(response);
    ASSERT_TRUE(next) << "expected Link rel=\"next\"\n" << response.Describe();
    EXPECT_EQ(LocationPath(*next), "/v2/_catalog");
    std::map<std::string, std::string> expected = {{"n", std::to_string(n)}, {"last", last}};
    EXPECT_EQ(QueryParams(*next), expected) << response.Header("Link");
  }
};

const std::vector<std::string> kRepos = {"zeta", "alpha/beta", "a/b/c", "mid", "a"};
const std::vector<std::string> kSorted = {"a", "a/b/c", "alpha/beta", "mid", "zeta"};

TEST_F(CatalogTest, EmptyRegistryHasEmptyCatalog) {
  HttpResponse response;
  EXPECT_EQ(Page("/v2/_catalog", &response), std::vector<std::string>{});
}

TEST_F(CatalogTest, ListsRepositoriesSorted) {
  PushRepositories(kRepos);
  HttpResponse response;
  EXPECT_EQ(Page("/v2/_catalog", &response), kSorted);
  EXPECT_FALSE(NextLink(response)) << response.Describe();
}

TEST_F(CatalogTest, PaginationWithNAndLast) {
  PushRepositories(kRepos);
  HttpResponse response;

  EXPECT_EQ(Page("/v2/_catalog?n=2", &response), (std::vector<std::string>{"a", "a/b/c"}));
  ExpectNextLink(response, 2, "a/b/c");

  EXPECT_EQ(Page("/v2/_catalog?n=2&last=a/b/c", &response),
            (std::vector<std::string>{"alpha/beta", "mid"}));
  ExpectNextLink(response, 2, "mid");

  EXPECT_EQ(Page("/v2/_catalog?n=2&last=mid", &response), std::vector<std::string>{"zeta"});
  EXPECT_FALSE(NextLink(response)) << "no Link on the last page\n" << response.Describe();
}

TEST_F(CatalogTest, FollowingLinksVisitsEveryRepositoryOnce) {
  PushRepositories(kRepos);
  std::vector<std::string> seen;
  std::string target = "/v2/_catalog?n=1";
  for (int pages = 0; pages < 10; ++pages) {
    HttpResponse response;
    std::vector<std::string> page = Page(target, &response);
    EXPECT_LE(page.size(), 1u);
    seen.insert(seen.end(), page.begin(), page.end());
    std::optional<std::string> next = NextLink(response);
    if (!next) break;
    target = *next;
  }
  EXPECT_EQ(seen, kSorted);
}

// catalog.maxentries caps a page: a client that asks for no particular
// page size still gets every repository by following the Links.
class CatalogMaxEntriesTest : public CatalogTest {
 protected:
  void SetUp() override {
    StartSharedServer({.top_level_extra = "catalog: {maxentries: 2}"});
    RegistryTest::SetUp();
  }
};

TEST_F(CatalogMaxEntriesTest, PagesNeverExceedMaxEntries) {
  PushRepositories(kRepos);
  std::vector<std::string> seen;
  std::string target = "/v2/_catalog";
  for (int pages = 0; pages < 10; ++pages) {
    HttpResponse response;
    std::vector<std::string> page = Page(target, &response);
    EXPECT_LE(page.size(), 2u) << response.body;
    seen.insert(seen.end(), page.begin(), page.end());
    std::optional<std::string> next = NextLink(response);
    if (!next) break;
    target = *next;
  }
  EXPECT_EQ(seen, kSorted);
}

}  // namespace
}  // namespace regfs::testing
