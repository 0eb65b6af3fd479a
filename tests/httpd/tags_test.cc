// GET /v2/<name>/tags/list: lexical order and n/last pagination with Link.
#include <algorithm>

#include "registry_test.h"

namespace regfs::testing {
namespace {

class TagsTest : public RegistryTest {
 protected:
  // Pushes one manifest to a fresh repository under every tag, in the
  // order given (deliberately not sorted).
  void PushTags(const std::vector<std::string>& tags) {
    repo_ = NewRepo();
    PushedManifest image;
    ASSERT_TRUE(PushImage(http(), repo_, tags.front(), media::kOciManifest, repo_, &image));
    for (size_t i = 1; i < tags.size(); ++i) {
      ASSERT_TRUE(PushManifest(http(), repo_, tags[i], media::kOciManifest, image.body));
    }
  }

  std::string ListPath() const { return "/v2/" + repo_ + "/tags/list"; }

  // GETs one page; checks the body's shape and returns its tags.
  std::vector<std::string> Page(const std::string& target, HttpResponse* response) {
    *response = http().Get(target);
    EXPECT_EQ(response->status, 200) << response->Describe();
    EXPECT_EQ(response->MediaType(), "application/json");
    Poco::JSON::Object::Ptr body = ParseObject(response->body);
    EXPECT_TRUE(body) << response->body;
    if (!body) return {};
    EXPECT_EQ(body->optValue<std::string>("name", ""), repo_);
    auto tags = StringArray(body, "tags");
    EXPECT_TRUE(tags) << "no \"tags\" string array: " << response->body;
    return tags.value_or(std::vector<std::string>{});
  }

  // Asserts a rel="next" Link to this list with exactly n and last.
  void ExpectNextLink(const HttpResponse& response, int n, const std::string& last) {
    std::optional<std::string> next = NextLink(response);
    ASSERT_TRUE(next) << "expected Link rel=\"next\"\n" << response.Describe();
    EXPECT_EQ(LocationPath(*next), ListPath());
    std::map<std::string, std::string> expected = {{"n", std::to_string(n)}, {"last", last}};
    EXPECT_EQ(QueryParams(*next), expected) << response.Header("Link");
  }

  std::string repo_;
};

TEST_F(TagsTest, ListIsSortedLexically) {
  std::vector<std::string> tags = {"latest", "b", "V2", "10", "a", "2", "1.0.0", "a_b", "a-b"};
  PushTags(tags);
  std::sort(tags.begin(), tags.end());
  HttpResponse response;
  EXPECT_EQ(Page(ListPath(), &response), tags);
  EXPECT_FALSE(response.HasHeader("Link")) << response.Describe();
}

TEST_F(TagsTest, PaginationWithNAndLast) {
  PushTags({"gamma", "alpha", "epsilon", "beta", "delta"});
  HttpResponse response;

  EXPECT_EQ(Page(ListPath() + "?n=2", &response), (std::vector<std::string>{"alpha", "beta"}));
  ExpectNextLink(response, 2, "beta");

  EXPECT_EQ(Page(ListPath() + "?n=2&last=beta", &response),
            (std::vector<std::string>{"delta", "epsilon"}));
  ExpectNextLink(response, 2, "epsilon");

  EXPECT_EQ(Page(ListPath() + "?n=2&last=epsilon", &response), (std::vector<std::string>{"gamma"}));
  EXPECT_FALSE(NextLink(response)) << "no Link on the last page\n" << response.Describe();
}

TEST_F(TagsTest, AnyLargePageSizeIsAccepted) {
  PushTags({"b", "a"});
  HttpResponse response;
  for (const char* n : {"1000000000", "99999999999999999999999", "0002"}) {
    SCOPED_TRACE(std::string("n=") + n);
    EXPECT_EQ(Page(ListPath() + "?n=" + n, &response), (std::vector<std::string>{"a", "b"}));
  }
}

TEST_F(TagsTest, FollowingLinksVisitsEveryTagOnce) {
  std::vector<std::string> tags;
  for (int i = 0; i < 11; ++i) tags.push_back("t" + std::to_string(i * 7 % 11));
  PushTags(tags);
  std::sort(tags.begin(), tags.end());

  std::vector<std::string> seen;
  std::string target = ListPath() + "?n=3";
  for (int pages = 0; pages < 10; ++pages) {
    HttpResponse response;
    std::vector<std::string> page = Page(target, &response);
    EXPECT_LE(page.size(), 3u);
    seen.insert(seen.end(), page.begin(), page.end());
    std::optional<std::string> next = NextLink(response);
    if (!next) break;
    target = *next;
  }
  EXPECT_EQ(seen, tags);
}

TEST_F(TagsTest, LastWithoutN) {
  PushTags({"c", "a", "d", "b"});
  HttpResponse response;
  EXPECT_EQ(Page(ListPath() + "?last=b", &response), (std::vector<std::string>{"c", "d"}));
  // `last` need not be an existing tag: listing resumes after its position.
  EXPECT_EQ(Page(ListPath() + "?last=bb", &response), (std::vector<std::string>{"c", "d"}));
}

TEST_F(TagsTest, NLargerThanListHasNoLink) {
  PushTags({"one", "two", "three"});
  HttpResponse response;
  EXPECT_EQ(Page(ListPath() + "?n=10", &response),
            (std::vector<std::string>{"one", "three", "two"}));
  EXPECT_FALSE(NextLink(response)) << response.Describe();
}

TEST_F(TagsTest, UnknownRepositoryIsNameUnknown) {
  EXPECT_TRUE(IsRegistryError(http().Get("/v2/" + NewRepo() + "/tags/list"), 404, "NAME_UNKNOWN"));
}

}  // namespace
}  // namespace regfs::testing
