// Loading config.yml with REGISTRY_* overrides, as registry:2 does.
#include "regfs/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace regfs {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& yaml) {
    std::ofstream(path_) << yaml;
    return path_;
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  std::string path_ = "/tmp/regfs-config-test-" + std::to_string(::getpid()) + ".yml";
};

TEST_F(ConfigTest, DefaultsWithoutAFile) {
  auto c = LoadConfig("", {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->addr.port, 5000);
  EXPECT_EQ(c->root_directory, "/var/lib/registry");
  EXPECT_EQ(c->storage_driver, "filesystem");
  EXPECT_FALSE(c->delete_enabled);
  EXPECT_FALSE(c->tls.enabled());
  EXPECT_FALSE(c->htpasswd.enabled());
  EXPECT_EQ(c->catalog_max_entries, 1000u);
  EXPECT_TRUE(c->warnings.empty());
}

TEST_F(ConfigTest, ReadsRegistry2Keys) {
  auto c = LoadConfig(Write(R"(version: 0.1
log: {level: debug, formatter: json, fields: {service: registry}}
storage:
  filesystem: {rootdirectory: /srv/reg}
  delete: {enabled: true}
  maintenance: {readonly: {enabled: true}, uploadpurging: {enabled: true, age: 2h, interval: 30m, dryrun: true}}
  cache: {blobdescriptor: inmemory}
http:
  addr: 127.0.0.1:5001
  host: https://reg.example.com/
  secret: s3cret
  headers: {X-Content-Type-Options: [nosniff]}
  draintimeout: 5s
catalog: {maxentries: 50}
)"),
                      {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->log_formatter, "json");
  EXPECT_EQ(c->log_fields.at("service"), "registry");
  EXPECT_EQ(c->root_directory, "/srv/reg");
  EXPECT_TRUE(c->delete_enabled);
  EXPECT_TRUE(c->read_only);
  EXPECT_EQ(c->upload_purging.age, std::chrono::hours(2));
  EXPECT_EQ(c->upload_purging.interval, std::chrono::minutes(30));
  EXPECT_TRUE(c->upload_purging.dry_run);
  EXPECT_EQ(c->addr.host, "127.0.0.1");
  EXPECT_EQ(c->addr.port, 5001);
  EXPECT_EQ(c->host, "https://reg.example.com");
  ASSERT_EQ(c->headers.size(), 1u);
  EXPECT_EQ(c->headers[0].second, std::vector<std::string>{"nosniff"});
  EXPECT_EQ(c->drain_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c->catalog_max_entries, 50u);
  EXPECT_TRUE(c->warnings.empty()) << c->warnings[0];
}

TEST_F(ConfigTest, GarbageCollectionInTheServer) {
  auto c = LoadConfig(Write("version: 0.1\n"), {});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->gc.enabled);
  EXPECT_EQ(c->gc.grace, std::chrono::hours(1));
  c = LoadConfig(Write(R"(version: 0.1
storage:
  maintenance:
    gc: {enabled: true, interval: 6h, grace: 0s, deleteuntagged: true, dryrun: true}
)"),
                 {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->gc.enabled);
  EXPECT_EQ(c->gc.interval, std::chrono::hours(6));
  EXPECT_EQ(c->gc.grace, std::chrono::seconds(0));  // allowed: registry:2's own behaviour
  EXPECT_TRUE(c->gc.delete_untagged);
  EXPECT_TRUE(c->gc.dry_run);
  EXPECT_TRUE(c->warnings.empty());
  c = LoadConfig(Write("version: 0.1\n"), {"REGISTRY_STORAGE_MAINTENANCE_GC_GRACE=15m"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->gc.grace, std::chrono::minutes(15));
  for (const char* bad : {"interval: 0s", "grace: -1s", "interval: soon"}) {
    auto refused = LoadConfig(
        Write(std::string("version: 0.1\nstorage: {maintenance: {gc: {") + bad + "}}}\n"), {});
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find("storage.maintenance.gc."), std::string::npos);
  }
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  auto c = LoadConfig(Write("version: 0.1\nhttp: {addr: ':6000'}\n"),
                      {"REGISTRY_HTTP_ADDR=0.0.0.0:7000",
                       "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data",
                       "REGISTRY_STORAGE_DELETE_ENABLED=true", "PATH=/bin", "REGISTRY_LOG_LEVEL=warn"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->addr.port, 7000);
  EXPECT_EQ(c->root_directory, "/data");
  EXPECT_TRUE(c->delete_enabled);
  EXPECT_EQ(c->log_level, "warn");
}

TEST_F(ConfigTest, InMemoryStorage) {
  auto c = LoadConfig(Write("version: 0.1\nstorage: {inmemory: {}}\n"), {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->storage_driver, "inmemory");
}

// registry:2's storage.s3 section, key for key, with the AWS environment filling the gaps.
TEST_F(ConfigTest, S3StorageAsRegistry2WritesIt) {
  auto c = LoadConfig(Write("version: 0.1\n"
                            "storage:\n"
                            "  s3:\n"
                            "    region: eu-west-1\n"
                            "    regionendpoint: http://127.0.0.1:7480\n"
                            "    bucket: images\n"
                            "    encrypt: true\n"
                            "    keyid: k-1\n"
                            "    secure: false\n"
                            "    skipverify: true\n"
                            "    v4auth: true\n"
                            "    chunksize: 6291456\n"
                            "    multipartcopychunksize: 33554432\n"
                            "    multipartcopymaxconcurrency: 4\n"
                            "    multipartcopythresholdsize: 67108864\n"
                            "    rootdirectory: /registry\n"
                            "    storageclass: REDUCED_REDUNDANCY\n"
                            "    useragent: x\n"
                            "  redirect: {disable: true}\n"),
                      {"AWS_ACCESS_KEY_ID=AKID", "AWS_SECRET_ACCESS_KEY=secret",
                       "AWS_SESSION_TOKEN=tok", "AWS_CA_BUNDLE=/ca.pem",
                       "REGISTRY_STORAGE_S3_FORCEPATHSTYLE=false"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->storage_driver, "s3");
  const S3StorageOptions& s3 = c->s3;
  EXPECT_EQ(s3.access_key, "AKID");
  EXPECT_EQ(s3.secret_key, "secret");
  EXPECT_EQ(s3.session_token, "tok");
  EXPECT_EQ(s3.ca_bundle, "/ca.pem");
  EXPECT_EQ(s3.region, "eu-west-1");
  EXPECT_EQ(s3.region_endpoint, "http://127.0.0.1:7480");
  ASSERT_TRUE(s3.force_path_style.has_value());
  EXPECT_FALSE(*s3.force_path_style);
  EXPECT_EQ(s3.bucket, "images");
  EXPECT_TRUE(s3.encrypt);
  EXPECT_EQ(s3.key_id, "k-1");
  EXPECT_FALSE(s3.secure);
  EXPECT_TRUE(s3.skip_verify);
  EXPECT_EQ(s3.chunk_size, 6291456u);
  EXPECT_EQ(s3.multipart_copy_chunk_size, 33554432u);
  EXPECT_EQ(s3.multipart_copy_max_concurrency, 4);
  EXPECT_EQ(s3.multipart_copy_threshold, 67108864u);
  EXPECT_EQ(s3.root_directory, "/registry");
  EXPECT_EQ(s3.storage_class, "REDUCED_REDUNDANCY");
  EXPECT_TRUE(c->redirect_disabled);
  ASSERT_EQ(c->warnings.size(), 1u);  // useragent
  EXPECT_NE(c->warnings[0].find("storage.s3.useragent"), std::string::npos);
}

TEST_F(ConfigTest, S3KeysInTheFileWinOverTheAwsEnvironment) {
  auto c = LoadConfig(Write("version: 0.1\nstorage: {s3: {bucket: b, accesskey: file, "
                            "secretkey: filesecret}}\n"),
                      {"AWS_ACCESS_KEY_ID=env", "AWS_SECRET_ACCESS_KEY=envsecret",
                       "AWS_REGION=ap-south-1", "REGISTRY_STORAGE_S3_BUCKET=other"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->s3.access_key, "file");
  EXPECT_EQ(c->s3.secret_key, "filesecret");
  EXPECT_EQ(c->s3.region, "ap-south-1");
  EXPECT_EQ(c->s3.bucket, "other");
  EXPECT_FALSE(c->s3.force_path_style.has_value());
  EXPECT_FALSE(c->redirect_disabled);
}

// registry:2 2.8's storage.oss, served through OSS's S3-compatible endpoint.
TEST_F(ConfigTest, OssStorageMapsOntoItsS3Api) {
  auto c = LoadConfig(Write("version: 0.1\nstorage:\n  oss:\n    accesskeyid: id\n"
                            "    accesskeysecret: sec\n    region: cn-hangzhou\n"
                            "    internal: true\n    bucket: b\n    secure: true\n"
                            "    chunksize: 1048576\n    rootdirectory: /r\n"),
                      {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->storage_driver, "s3");
  EXPECT_EQ(c->s3.access_key, "id");
  EXPECT_EQ(c->s3.secret_key, "sec");
  EXPECT_EQ(c->s3.region, "oss-cn-hangzhou");
  EXPECT_EQ(c->s3.region_endpoint, "s3.oss-cn-hangzhou-internal.aliyuncs.com");
  EXPECT_EQ(c->s3.force_path_style, false);
  EXPECT_EQ(c->s3.min_part_size, 100u * 1024);
  EXPECT_EQ(c->s3.chunk_size, 1048576u);
  EXPECT_EQ(c->s3.max_single_copy, uint64_t{1} << 30);
  EXPECT_TRUE(c->warnings.empty());
}

TEST_F(ConfigTest, UnknownKeysAreNamedInWarnings) {
  auto c = LoadConfig(Write("version: 0.1\nvalidation: {disabled: true}\nfoo: bar\n"), {});
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->warnings.size(), 2u);
  std::string all = c->warnings[0] + c->warnings[1];
  EXPECT_NE(all.find("foo"), std::string::npos);
  EXPECT_NE(all.find("validation.disabled"), std::string::npos);
}

TEST_F(ConfigTest, ProxyAsRegistry2WritesIt) {
  auto c = LoadConfig(Write(R"(version: 0.1
proxy:
  remoteurl: https://registry-1.docker.io/
  username: alice
  ttl: 72h
)"),
                      {"REGISTRY_PROXY_PASSWORD=s3cret"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->warnings.empty());
  ASSERT_EQ(c->proxy.upstreams.size(), 1u);
  const Config::Upstream& u = c->proxy.upstreams[0];
  EXPECT_EQ(u.prefix, "");
  EXPECT_EQ(u.remote_url, "https://registry-1.docker.io");
  EXPECT_EQ(u.username, "alice");
  EXPECT_EQ(u.password, "s3cret");
  EXPECT_EQ(u.ttl, std::chrono::hours(72));
  EXPECT_EQ(u.tag_check_interval, std::chrono::minutes(5));

  auto defaults = LoadConfig(Write("version: 0.1\nproxy: {remoteurl: 'http://up:5000'}\n"), {});
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->proxy.upstreams.at(0).ttl, std::chrono::hours(168));
  auto never = LoadConfig(Write("version: 0.1\nproxy: {remoteurl: 'http://up', ttl: 0}\n"), {});
  ASSERT_TRUE(never.ok()) << never.status().ToString();
  EXPECT_EQ(never->proxy.upstreams.at(0).ttl.count(), 0);
  EXPECT_FALSE(LoadConfig("", {}).value().proxy.enabled());
}

TEST_F(ConfigTest, ProxyUpstreamsUnderPrefixes) {
  auto c = LoadConfig(Write(R"(version: 0.1
proxy:
  tagcheckinterval: 30s
  timeout: 5s
  spooldirectory: /srv/spool
  upstreams:
    - {prefix: hub, remoteurl: 'https://registry-1.docker.io', ttl: 24h}
    - {prefix: hub/library/, remoteurl: 'http://mirror:5000', tagcheckinterval: 2m}
    - {prefix: ghcr, remoteurl: 'https://ghcr.io', username: u, password: p}
)"),
                      {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->warnings.empty());
  ASSERT_EQ(c->proxy.upstreams.size(), 3u);
  // Longest prefix first, so the most specific decides.
  EXPECT_EQ(c->proxy.upstreams[0].prefix, "hub/library");
  EXPECT_EQ(c->proxy.upstreams[0].tag_check_interval, std::chrono::minutes(2));
  EXPECT_EQ(c->proxy.upstreams[1].prefix, "ghcr");
  EXPECT_EQ(c->proxy.upstreams[1].tag_check_interval, std::chrono::seconds(30));
  EXPECT_EQ(c->proxy.upstreams[2].prefix, "hub");
  EXPECT_EQ(c->proxy.upstreams[2].ttl, std::chrono::hours(24));
  EXPECT_EQ(c->proxy.timeout, std::chrono::seconds(5));
  EXPECT_EQ(c->proxy.spool_directory, "/srv/spool");
}

TEST_F(ConfigTest, ProxyMistakesAreNamedAndPasswordsNeverQuoted) {
  for (const char* bad : {
           "proxy: {remoteurl: 'ftp://x'}",
           "proxy: {remoteurl: 'https://u:hunter2@x'}",
           "proxy: {remoteurl: 'https://x/v2/'}",
           "proxy: {remoteurl: 'https://x', username: u}",
           "proxy: {remoteurl: 'https://x', ttl: soon}",
           "proxy: {ttl: 1h}",
           "proxy: {upstreams: [{remoteurl: 'https://x'}]}",
           "proxy: {upstreams: [{prefix: 'Bad..Name', remoteurl: 'https://x'}]}",
           "proxy: {upstreams: [{prefix: a, remoteurl: 'https://x'}, {prefix: a, remoteurl: 'https://y'}]}",
           "proxy: {upstreams: [{prefix: a, remoteurl: 'https://x', passwd: hunter2}]}",
           "proxy: {remoteurl: 'https://x', tagcheckinterval: 0s}",
           "proxy: {remoteurl: 'https://x', spooldirectory: relative}",
       }) {
    auto c = LoadConfig(Write(std::string("version: 0.1\n") + bad + "\n"), {});
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("proxy"), std::string::npos) << c.status().message();
    EXPECT_EQ(c.status().message().find("hunter2"), std::string::npos) << c.status().message();
  }
}

TEST_F(ConfigTest, NotificationEndpointsAsRegistry2WritesThem) {
  auto c = LoadConfig(Write(R"(version: 0.1
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer some-token]
      timeout: 500ms
      threshold: 5
      backoff: 1m30s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes:
           - application/vnd.docker.image.rootfs.diff.tar.gzip
        actions:
           - pull
    - name: ce
      url: http://127.0.0.1:9000/
      format: cloudevents
      envelope: v2
      secret: hush
      maxevents: 50
      maxage: 2h
)"), {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->warnings.empty()) << c->warnings[0];
  EXPECT_TRUE(c->notifications.include_references);
  ASSERT_EQ(c->notifications.endpoints.size(), 2u);
  const auto& a = c->notifications.endpoints[0];
  EXPECT_EQ(a.name, "alistener");
  EXPECT_EQ(a.url, "https://my.listener.com/event");
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].second, std::vector<std::string>{"Bearer some-token"});
  EXPECT_EQ(a.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(a.threshold, 5);
  EXPECT_EQ(a.backoff, std::chrono::milliseconds(90'000));
  EXPECT_EQ(a.ignored_media_types,
            (std::vector<std::string>{"application/octet-stream",
                                      "application/vnd.docker.image.rootfs.diff.tar.gzip"}));
  EXPECT_EQ(a.ignored_actions, std::vector<std::string>{"pull"});
  EXPECT_EQ(a.format, "envelope");
  const auto& ce = c->notifications.endpoints[1];
  EXPECT_EQ(ce.timeout, std::chrono::milliseconds(1000));  // registry:2's default
  EXPECT_EQ(ce.format, "cloudevents");
  EXPECT_EQ(ce.envelope_version, "v2");
  EXPECT_EQ(ce.secret, "hush");
  EXPECT_EQ(ce.max_pending, 50u);
  EXPECT_EQ(ce.max_age, std::chrono::hours(2));
}

TEST_F(ConfigTest, NotificationEndpointsFromTheEnvironment) {
  auto c = LoadConfig("", {"REGISTRY_NOTIFICATIONS_ENDPOINTS=[{name: env, url: \"http://hook:9/x\"}]",
                           "REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES=true"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->notifications.endpoints.size(), 1u);
  EXPECT_EQ(c->notifications.endpoints[0].url, "http://hook:9/x");
  EXPECT_TRUE(c->notifications.include_references);
}

TEST_F(ConfigTest, BadNotificationEndpointsAreClearErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"[{name: a, url: ftp://x}]", "http:// or https://"},
      {"[{url: http://x}]", "needs a name"},
      {"[{name: a, url: http://x, timeout: -1s}]", "must not be negative"},
      {"[{name: a, url: http://x, timeout: soon}]", "not a duration"},
      {"[{name: a, url: http://x}, {name: a, url: http://y}]", "two endpoints are named a"},
      {"[{name: a, url: http://x, ignore: {actions: [frobnicate]}}]", "unknown action"},
      {"[{name: a, url: http://x, format: xml}]", "envelope or cloudevents"},
      {"[{name: a, url: http://x, colour: blue}]", "unknown key colour"},
      {"{name: a}", "list of endpoints"},
  };
  for (const auto& [endpoints, why] : cases) {
    auto c = LoadConfig(Write(std::string("notifications: {endpoints: ") + endpoints + "}\n"), {});
    ASSERT_FALSE(c.ok()) << endpoints;
    EXPECT_NE(c.status().message().find(why), std::string::npos)
        << endpoints << ": " << c.status().message();
  }
  auto secret = LoadConfig(
      Write("notifications: {endpoints: [{name: a, url: ftp://x, headers: {X: [sekrit]}}]}\n"), {});
  EXPECT_EQ(secret.status().message().find("sekrit"), std::string::npos);
}

TEST_F(ConfigTest, TlsAndHtpasswd) {
  auto c = LoadConfig(Write(R"(version: 0.1
http: {tls: {certificate: /c.pem, key: /k.pem, clientcas: [/ca.pem], minimumtls: tls1.3}}
auth: {htpasswd: {realm: r, path: /etc/htpasswd}}
)"),
                      {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->tls.enabled());
  EXPECT_EQ(c->tls.client_cas, std::vector<std::string>{"/ca.pem"});
  EXPECT_EQ(c->tls.minimum, "tls1.3");
  EXPECT_EQ(c->htpasswd.realm, "r");
  EXPECT_EQ(c->htpasswd.path, "/etc/htpasswd");
  // registry:2's variables for TLS work too.
  auto e = LoadConfig("", {"REGISTRY_HTTP_TLS_CERTIFICATE=/c.pem", "REGISTRY_HTTP_TLS_KEY=/k.pem"});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tls.key, "/k.pem");
}

TEST_F(ConfigTest, RefusesWhatWouldBeLessSafeThanAsked) {
  for (const char* yaml : {"auth: {token: {realm: x, service: y, issuer: z}}\n",  // no keys
                           "auth: {token: {service: y, issuer: z, rootcertbundle: /b}}\n",
                           "auth: {token: {realm: x, service: y, issuer: z, rootcertbundle: /b, "
                           "autoredirect: true}}\n",
                           "auth: {htpasswd: {path: /h}, token: {realm: x, service: y, issuer: z, "
                           "rootcertbundle: /b}}\n",
                           "access: {rules: [{repository: 'a/*', users: {bob: [pul]}}]}\n",
                           "access: {rules: [{repository: 'a/*', groups: {nobody: [pull]}}]}\n",
                           "access: {rules: [{users: {bob: [pull]}}]}\n",
                           "access: {rules: [{repository: x, who: [bob]}]}\n",
                           "access: {rules: [{repository: {a: b}}]}\n",
                           "access: [1]\n",
                           "limits: {concurrentuploads: 0}\n",
                           "limits: {connectionsperclient: -1}\n", "limits: {headtimeout: 0s}\n",
                           "storage: {s3: {region: r}}\n", "storage: {s3: {bucket: b, v4auth: false}}\n",
                           "storage: {s3: {bucket: b, chunksize: 0}}\n",
                           "storage: {filesystem: {rootdirectory: /r}, s3: {bucket: b}}\n",
                           "storage: {swift: {container: c}}\n", "http: {tls: {certificate: /c.pem}}\n",
                           "http: {tls: {certificate: /c, key: /k, minimumtls: ssl3}}\n",
                           "log: {level: loud}\n", "http: {addr: 'nope'}\n",
                           "catalog: {maxentries: 0}\n", "[1, 2]\n", "a: [unclosed\n"}) {
    auto c = LoadConfig(Write(std::string("version: 0.1\n") + yaml), {});
    EXPECT_FALSE(c.ok()) << yaml;
  }
  EXPECT_TRUE(LoadConfig("/nonexistent/config.yml", {}).status().IsNotFound());
}

TEST_F(ConfigTest, HostileYamlAliasesAreRefusedNotWalkedForever) {
  // An alias to its own ancestor is a cycle; nested aliases expand exponentially.
  auto cycle = LoadConfig(Write("storage:\n  delete: &y\n    enabled: *y\n"), {});
  ASSERT_FALSE(cycle.ok());
  EXPECT_NE(cycle.status().message().find("alias"), std::string::npos) << cycle.status().ToString();

  std::string laughs = "a0: &a0 {x: 1, y: 1}\n";
  for (int i = 1; i < 30; ++i) {
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " {x: *a" +
              std::to_string(i - 1) + ", y: *a" + std::to_string(i - 1) + "}\n";
  }
  EXPECT_FALSE(LoadConfig(Write(laughs), {}).ok());

  // Shared anchors used the ordinary way still load.
  auto shared = LoadConfig(Write("x-common: &common {enabled: true}\nstorage:\n"
                                 "  delete: *common\n"),
                           {});
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  EXPECT_TRUE(shared->delete_enabled);
}

TEST_F(ConfigTest, ReadsTokenAuthAccessRulesAndLimits) {
  auto c = LoadConfig(Write(R"(version: 0.1
auth:
  token:
    realm: https://auth.example/token
    service: registry.example
    issuer: auth.example
    rootcertbundle: /etc/regfs/token.crt
access:
  groups:
    developers: [alice, bob]
  rules:
    - repository: "public/**"
      anonymous: [pull]
      authenticated: [pull, push]
    - repository: "team/*"
      groups: {developers: [pull, push]}
      users: {carol: "*"}
limits: {concurrentuploads: 8, uploadsperrepository: 20, connectionsperclient: 0, headtimeout: 1m}
)"),
                      {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->warnings.empty()) << c->warnings.front();
  EXPECT_TRUE(c->token.enabled());
  EXPECT_EQ(c->token.realm, "https://auth.example/token");
  EXPECT_EQ(c->token.service, "registry.example");
  EXPECT_EQ(c->token.issuer, "auth.example");
  EXPECT_EQ(c->token.root_cert_bundle, "/etc/regfs/token.crt");
  ASSERT_TRUE(c->access.enabled);
  EXPECT_EQ(c->access.groups.at("developers"), (std::vector<std::string>{"alice", "bob"}));
  ASSERT_EQ(c->access.rules.size(), 2u);
  EXPECT_EQ(c->access.rules[0].repository, "public/**");
  EXPECT_EQ(c->access.rules[0].anonymous, (std::vector<std::string>{"pull"}));
  EXPECT_EQ(c->access.rules[0].authenticated, (std::vector<std::string>{"pull", "push"}));
  EXPECT_EQ(c->access.rules[1].groups.at("developers"),
            (std::vector<std::string>{"pull", "push"}));
  EXPECT_EQ(c->access.rules[1].users.at("carol"), (std::vector<std::string>{"*"}));
  EXPECT_EQ(c->limits.concurrent_uploads, 8u);
  EXPECT_EQ(c->limits.connections_per_client, 0u);
  EXPECT_EQ(c->limits.head_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c->limits.uploads_per_repository, 20u);

  // An empty access section grants nothing to anyone, which is what it says.
  auto empty = LoadConfig(Write("version: 0.1\naccess: {}\n"), {});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->access.enabled);
  EXPECT_TRUE(empty->access.rules.empty());
}

}  // namespace
}  // namespace regfs

namespace regfs {
namespace {

class ServiceConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& yaml) {
    std::ofstream(path_) << yaml;
    return path_;
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  std::string path_ = "/tmp/regfs-service-config-test-" + std::to_string(::getpid()) + ".yml";
};

TEST_F(ServiceConfigTest, ReadsDebugHealthRedisAndTheCacheAsRegistry2WritesThem) {
  auto c = LoadConfig(Write(R"(version: 0.1
storage:
  filesystem: {rootdirectory: /srv/reg}
  cache: {blobdescriptor: redis}
http:
  addr: :5000
  debug:
    addr: 127.0.0.1:5001
    prometheus: {enabled: true, path: /prom}
health:
  storagedriver: {enabled: true, interval: 5s, threshold: 2}
  file:
    - {file: /etc/regfs/drain, interval: 1s}
  http:
    - uri: http://auth.internal/health
      headers: {Authorization: [Bearer x]}
      statuscode: 204
      timeout: 3s
      interval: 15s
      threshold: 3
  tcp:
    - {addr: db.internal:5432, timeout: 2s, interval: 30s, threshold: 4}
redis:
  addr: 10.0.0.5:6379
  password: hunter2
  db: 3
  dialtimeout: 10ms
  readtimeout: 20ms
  writetimeout: 30ms
  pool: {maxidle: 8, maxactive: 32, idletimeout: 60s}
)"),
                      {"REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED=false"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->debug.enabled);
  EXPECT_EQ(c->debug.addr.port, 5001);
  EXPECT_FALSE(c->debug.prometheus);  // the environment wins, as in registry:2
  EXPECT_EQ(c->debug.prometheus_path, "/prom");
  EXPECT_TRUE(c->health.storage.enabled);
  EXPECT_EQ(c->health.storage.interval, std::chrono::seconds(5));
  EXPECT_EQ(c->health.storage.threshold, 2);
  ASSERT_EQ(c->health.files.size(), 1u);
  EXPECT_EQ(c->health.files[0].path, "/etc/regfs/drain");
  ASSERT_EQ(c->health.http.size(), 1u);
  EXPECT_EQ(c->health.http[0].status, 204);
  EXPECT_EQ(c->health.http[0].threshold, 3);
  EXPECT_EQ(c->health.http[0].headers.at(0).second.at(0), "Bearer x");
  ASSERT_EQ(c->health.tcp.size(), 1u);
  EXPECT_EQ(c->health.tcp[0].timeout, std::chrono::seconds(2));
  EXPECT_EQ(c->redis.addrs, std::vector<std::string>{"10.0.0.5:6379"});
  EXPECT_EQ(c->redis.db, 3);
  EXPECT_EQ(c->redis.dial_timeout, std::chrono::milliseconds(10));
  EXPECT_EQ(c->redis.max_active, 32);
  EXPECT_EQ(c->blob_descriptor_cache, "redis");
  for (const auto& w : c->warnings) ADD_FAILURE() << "unexpected warning: " << w;
  StorageOptions storage = StorageOptionsOf(*c);
  EXPECT_EQ(storage.descriptor_cache, "redis");
  EXPECT_EQ(storage.redis.password, "hunter2");
}

TEST_F(ServiceConfigTest, Redis3AddrsAndBadValuesAreClearErrors) {
  auto three = LoadConfig(Write("redis: {addrs: [a:1, b:2]}\n"), {});
  ASSERT_TRUE(three.ok()) << three.status().ToString();
  EXPECT_EQ(three->redis.addrs.size(), 2u);
  const std::pair<const char*, const char*> cases[] = {
      {"storage: {cache: {blobdescriptor: redis}}\n", "has no addr"},
      {"storage: {cache: {blobdescriptor: memcached}}\n", "inmemory or redis"},
      {"redis: {addr: nocolon}\n", "host:port"},
      {"redis: {addr: 'a:1', password: sekrit, tls: {enabled: true}}\n", "not supported"},
      {"redis: {addr: 'a:1', dialtimeout: soon}\n", "redis.dialtimeout"},
      {"health: {storagedriver: {threshold: 0}}\n", "must be positive"},
      {"health: {file: [{interval: 1s}]}\n", "needs a file"},
      {"health: {http: [{uri: ftp://x}]}\n", "http:// or https://"},
      {"health: {tcp: [{addr: nocolon}]}\n", "host:port"},
      {"health: {file: {file: x}}\n", "must be a list"},
      {"http: {debug: {addr: 'not an address'}}\n", "http.debug.addr"},
      {"http: {debug: {prometheus: {path: metrics}}}\n", "must start with /"},
  };
  for (const auto& [yaml, why] : cases) {
    auto c = LoadConfig(Write(yaml), {});
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(why), std::string::npos)
        << yaml << ": " << c.status().message();
    EXPECT_EQ(c.status().message().find("sekrit"), std::string::npos);
  }
}

}  // namespace
}  // namespace regfs
