// The base endpoint, error format, repository-name validation, path
// traversal and the access log.
#include <filesystem>
#include <sstream>
#include <thread>

#include "registry_test.h"

namespace regfs::testing {
namespace {

namespace fs = std::filesystem;

class BaseTest : public RegistryTest {};

TEST_F(BaseTest, ApiVersionCheckAnswersEmptyObject) {
  HttpResponse response = http().Get("/v2/");
  ASSERT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.Header("Docker-Distribution-API-Version"), "registry/2.0");
  Poco::JSON::Object::Ptr body = ParseObject(response.body);
  ASSERT_TRUE(body) << "body is not a JSON object: " << response.body;
  EXPECT_EQ(body->size(), 0u) << response.body;
}

TEST_F(BaseTest, ApiVersionCheckAnswersHead) {
  HttpResponse response = http().Head("/v2/");
  EXPECT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.Header("Docker-Distribution-API-Version"), "registry/2.0");
  EXPECT_TRUE(response.body.empty());
}

TEST_F(BaseTest, ApiVersionHeaderOnSuccessesAndErrors) {
  std::string repo = NewRepo();
  std::string missing = Sha256Digest("never pushed");
  const std::vector<HttpRequest> requests = {
      {"GET", "/v2/"},
      {"POST", UploadsPath(repo)},                              // 202
      {"GET", BlobPath(repo, missing)},                         // 404
      {"HEAD", BlobPath(repo, missing)},                        // 404 without body
      {"PUT", ManifestPath(repo, "-bad")},                      // 400
      {"GET", ManifestPath(repo, "latest"), ManifestAccept()},  // 404
      {"GET", "/v2/" + repo + "/tags/list"},                    // 404
      {"GET", "/v2/_catalog"},                                  // 200
  };
  for (const HttpRequest& request : requests) {
    SCOPED_TRACE(request.method + " " + request.target);
    HttpResponse response = http().Send(request);
    ASSERT_NE(response.status, 0) << response.Describe();
    EXPECT_EQ(response.Header("Docker-Distribution-API-Version"), "registry/2.0")
        << response.Describe();
  }
}

TEST_F(BaseTest, ErrorsAreJsonErrorLists) {
  std::string repo = NewRepo();
  HttpResponse response = http().Get(ManifestPath(repo, "latest"), ManifestAccept());
  EXPECT_TRUE(IsRegistryErrorOneOf(response, 404, {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}));
  response = http().Put(ManifestPath(repo, "-bad"), "{}",
                        {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_TRUE(IsRegistryError(response, 400, "TAG_INVALID"));
}

// Names breaking the distribution grammar
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
const std::vector<std::string>& InvalidNames() {
  static const std::vector<std::string> names = {
      "Upper",  "lower/Upper", "a/../b", "../a",  "a/..",   "a..b",   "-lead",
      "trail-", "trail.",      "a//b",   "/lead", "trail/", "_under", "a/_b",
  };
  return names;
}

TEST_F(BaseTest, InvalidNamesRejectedOnPush) {
  for (const std::string& name : InvalidNames()) {
    SCOPED_TRACE("name \"" + name + "\"");
    HttpResponse response = http().Post(UploadsPath(name));
    EXPECT_TRUE(IsRegistryError(response, 400, "NAME_INVALID"));
  }
}

TEST_F(BaseTest, InvalidNamesRejectedOnPull) {
  for (const std::string& name : InvalidNames()) {
    SCOPED_TRACE("name \"" + name + "\"");
    for (const std::string& target : {ManifestPath(name, "latest"), "/v2/" + name + "/tags/list"}) {
      HttpResponse response = http().Get(target, ManifestAccept());
      if (response.status == 404) {
        EXPECT_TRUE(IsRegistryError(response, 404, "NAME_UNKNOWN")) << target;
      } else {
        EXPECT_TRUE(IsRegistryError(response, 400, "NAME_INVALID")) << target;
      }
    }
  }
}

TEST_F(BaseTest, PercentEncodedTraversalNeverEscapes) {
  std::string content = "traversal probe content";
  std::string digest = Sha256Digest(content);
  std::set<std::string> before = FilesOutsideStorage();
  const std::vector<HttpRequest> requests = {
      {"GET", "/v2/%2e%2e/%2e%2e/%2e%2e/manifests/latest", ManifestAccept()},
      {"GET", "/v2/a/%2e%2e/%2e%2e/%2e%2e/%2e%2e/tags/list"},
      {"GET", "/v2/a%2f..%2f..%2f..%2f..%2fetc/blobs/" + digest},
      {"POST", "/v2/%2e%2e%2f%2e%2e%2f%2e%2e%2fescape/blobs/uploads/"},
      {"POST",
       "/v2/x/%2e%2e/%2e%2e/%2e%2e/%2e%2e/escape/blobs/uploads/?digest=" + digest,
       {{"Content-Type", "application/octet-stream"}},
       content},
      {"PUT",
       "/v2/x%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fescape/manifests/latest",
       {{"Content-Type", std::string(media::kOciManifest)}},
       "{}"},
      {"DELETE", "/v2/%2e%2e/%2e%2e/%2e%2e/manifests/" + digest},
      {"DELETE", "/v2/%2e%2e%2f%2e%2e%2fconfig.yml/blobs/" + digest},
  };
  for (const HttpRequest& request : requests) {
    SCOPED_TRACE(request.method + " " + request.target);
    HttpResponse response = http().Send(request);
    // Redirects to a cleaned path are harmless; success or a crash is not.
    EXPECT_GE(response.status, 300) << response.Describe();
    EXPECT_LT(response.status, 500) << response.Describe();
  }
  EXPECT_EQ(FilesOutsideStorage(), before);
  fs::path dir(server().dir());
  EXPECT_FALSE(fs::exists(dir / "escape"));
  EXPECT_FALSE(fs::exists(dir.parent_path() / "escape"));
}

TEST_F(BaseTest, ClientMistakesNeverCauseServerErrors) {
  std::string repo = NewRepo();
  std::string blob = "some blob";
  ASSERT_TRUE(PushBlob(http(), repo, blob));
  const std::vector<HttpRequest> requests = {
      {"GET", "/v2/" + repo + "/blobs/"},
      {"GET", "/v2/" + repo + "/manifests/"},
      {"PUT", ManifestPath(repo, "latest"), {}, "not json at all"},
      {"PUT", ManifestPath(repo, "latest"), {{"Content-Type", "text/plain"}}, "{"},
      {"POST", UploadsPath(repo) + "?digest=garbage", {}, "data"},
      {"PATCH", UploadsPath(repo), {}, "data"},
      {"PUT", UploadsPath(repo) + "?digest=" + Sha256Digest("x"), {}, "x"},
      {"GET", "/v2/" + repo + "/tags/list?n=abc"},
      {"GET", "/v2/" + repo + "/tags/list?n=-1"},
      {"GET", "/v2/_catalog?n=-5"},
      {"GET", "/v2/_catalog?n=notanumber"},
      {"GET", BlobPath(repo, Sha256Digest(blob)), {{"Range", "bytes=garbage"}}},
      {"GET", BlobPath(repo, Sha256Digest(blob)), {{"Range", "bytes=5-2"}}},
      {"GET", "/v2/" + repo + "/referrers/not-a-digest"},
      {"DELETE", "/v2/"},
      {"GET", "/v2/" + repo + "/blobs/uploads/"},
  };
  for (const HttpRequest& request : requests) {
    SCOPED_TRACE(request.method + " " + request.target);
    HttpResponse response = http().Send(request);
    EXPECT_NE(response.status, 0) << response.Describe();
    EXPECT_LT(response.status, 500) << response.Describe();
  }
}

TEST_F(BaseTest, AccessLogRecordsMethodPathAndStatus) {
  std::string repo = NewRepo();
  std::string path = "/v2/" + repo + "/tags/list";
  HttpResponse response = http().Get(path);
  ASSERT_EQ(response.status, 404) << response.Describe();
  ASSERT_TRUE(server().WaitForLog(path)) << "no log line mentions " << path;
  // The log may be written shortly after the response: poll for the line.
  bool found = false;
  for (int attempt = 0; attempt < 40 && !found; ++attempt) {
    std::istringstream log(server().ReadLog());
    for (std::string line; std::getline(log, line);) {
      if (line.find(path) != std::string::npos && line.find("GET") != std::string::npos &&
          line.find("404") != std::string::npos) {
        found = true;
        break;
      }
    }
    if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(found) << "no single log line has GET, " << path << " and 404";
}

}  // namespace
}  // namespace regfs::testing
