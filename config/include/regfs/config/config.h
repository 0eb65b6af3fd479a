// The registry's configuration, shared by regfs-httpd and regfs-fused: Distribution's config.yml
// format (version 0.1) with the same REGISTRY_* environment overrides, so an existing registry:2
// configuration keeps working.
//
// Keys regfs does not implement are reported in `warnings` (the server logs them at start);
// keys whose absence would make the registry less safe than the operator asked for (token
// authentication, another storage driver) are errors instead, so regfs never silently
// serves without protection the configuration requests.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "regfs/core/backend.h"
#include "regfs/core/status.h"

namespace regfs {

struct ListenAddress {
  std::string host;  // empty: all interfaces
  int port = 5000;
  std::string ToString() const;
};

struct Config {
  // log
  std::string log_level = "info";      // error, warn, info, debug
  std::string log_formatter = "text";  // text or json
  bool access_log = true;
  std::map<std::string, std::string> log_fields;
  // storage
  std::string storage_driver = "filesystem";  // filesystem, inmemory or s3 (also for oss)
  std::string root_directory = "/var/lib/registry";
  // storage.s3, or storage.oss mapped onto OSS's S3-compatible API; credentials may come
  // from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, the region from
  // AWS_REGION, a private CA from AWS_CA_BUNDLE.
  S3StorageOptions s3;
  // storage.redirect.disable: blob GETs are answered with a redirect to a presigned URL of
  // the object store unless this is set (registry:2's default; no effect on the filesystem).
  bool redirect_disabled = false;
  bool delete_enabled = false;
  bool read_only = false;
  // storage.maintenance.uploadpurging: remove uploads abandoned longer than `age`.
  struct UploadPurging {
    bool enabled = true;
    std::chrono::seconds age{168 * 3600};
    std::chrono::seconds interval{24 * 3600};
    bool dry_run = false;
  } upload_purging;
  // storage.maintenance.gc (a regfs extension): garbage collection run by the server while
  // it serves, every `interval`; with several replicas, by one at a time.
  struct GarbageCollection {
    bool enabled = false;
    std::chrono::seconds interval{24 * 3600};
    std::chrono::seconds grace{3600};  // keep what was written this recently (may be 0)
    bool delete_untagged = false;
    bool dry_run = false;
  } gc;
  // http
  ListenAddress addr;
  std::string host;  // external base URL for absolute Location headers, e.g. https://r.example
  bool relative_urls = false;
  std::string secret;
  std::vector<std::pair<std::string, std::vector<std::string>>> headers;
  std::chrono::seconds drain_timeout{30};
  // http.tls: TLS when certificate and key are set.
  struct Tls {
    std::string certificate;
    std::string key;
    std::vector<std::string> client_cas;     // client certificates required when set (mTLS)
    std::string minimum = "tls1.2";          // tls1.0 .. tls1.3
    std::vector<std::string> cipher_suites;  // OpenSSL names
    bool enabled() const { return !certificate.empty(); }
  } tls;
  // auth.htpasswd: HTTP basic authentication against bcrypt entries.
  struct Htpasswd {
    std::string realm;
    std::string path;
    bool enabled() const { return !path.empty(); }
  } htpasswd;
  // auth.token: Docker's token authentication; JWTs issued by `issuer` for `service`, signed
  // by a key of a certificate in `root_cert_bundle` or of the JSON Web Key Set in `jwks`.
  struct Token {
    std::string realm;  // URL of the token server, sent in the Bearer challenge
    std::string service;
    std::string issuer;
    std::string root_cert_bundle;
    std::string jwks;
    bool enabled() const { return !realm.empty(); }
  } token;
  // access (a regfs extension): who may pull, push and delete which repositories.
  struct AccessRule {
    std::string repository;  // pattern: '*' within one name component, '**' across them
    std::vector<std::string> anonymous;      // actions for requests without credentials
    std::vector<std::string> authenticated;  // actions for every authenticated caller
    std::map<std::string, std::vector<std::string>> users;   // user -> actions
    std::map<std::string, std::vector<std::string>> groups;  // group -> actions
  };
  struct Access {
    bool enabled = false;  // the section is present: only what a rule grants is allowed
    std::map<std::string, std::vector<std::string>> groups;  // group -> member users
    std::vector<AccessRule> rules;
  } access;
  // limits (a regfs extension): what one server accepts at once.
  struct Limits {
    size_t concurrent_uploads = 256;        // PATCH/PUT upload requests streaming at once
    size_t uploads_per_repository = 1000;   // upload sessions open in one repository
    // Connections one remote address may hold at once (loopback exempt; 0: no limit).
    size_t connections_per_client = 128;
    // Time a connection gets to send a complete request head, however it trickles.
    std::chrono::seconds head_timeout{30};
  } limits;
  // catalog
  size_t catalog_max_entries = 1000;
  // notifications: registry:2's webhook endpoints, delivered from the durable change log.
  struct NotificationEndpoint {
    std::string name;  // REQUIRED, unique: it names the endpoint's place in the log
    bool disabled = false;
    std::string url;  // http:// or https://
    // Sent with every request; values may be credentials, so they are never logged.
    std::vector<std::pair<std::string, std::vector<std::string>>> headers;
    std::chrono::milliseconds timeout{1000};
    int threshold = 10;  // failures in a row before waiting `backoff` between attempts
    std::chrono::milliseconds backoff{1000};
    std::vector<std::string> ignored_media_types;  // ignoredmediatypes and ignore.mediatypes
    std::vector<std::string> ignored_actions;      // ignore.actions: push, pull, mount, delete
    // regfs extensions
    std::string format = "envelope";  // or "cloudevents" (CloudEvents 1.0, structured mode)
    // envelope: v1 (registry:2 2.8's media type) or v2 (Distribution 3's)
    std::string envelope_version = "v1";
    std::string secret;  // when set: X-Regfs-Signature-256 = sha256=HMAC-SHA256(secret, body)
    // Events not yet delivered beyond these are dropped, oldest first, with a log line.
    uint64_t max_pending = 100'000;
    std::chrono::seconds max_age{7 * 24 * 3600};
  };
  struct Notifications {
    bool include_references = false;  // notifications.events.includereferences
    std::vector<NotificationEndpoint> endpoints;
  } notifications;

  // http.debug: a second listener for operators (health, metrics, probes), never for clients.
  struct Debug {
    bool enabled = false;  // http.debug.addr is set
    ListenAddress addr;
    bool prometheus = false;                     // http.debug.prometheus.enabled
    std::string prometheus_path = "/metrics";    // http.debug.prometheus.path
  } debug;
  // health: checks that, while failing, make /v2/ answer 503 (registry:2's behaviour), so a
  // load balancer sends clients elsewhere.
  struct Health {
    struct Storage {
      bool enabled = false;
      std::chrono::milliseconds interval{10'000};
      int threshold = 3;  // failures in a row before the check fails
    } storage;
    struct File {  // fails while the file exists
      std::string path;
      std::chrono::milliseconds interval{10'000};
    };
    std::vector<File> files;
    struct Http {  // fails unless a GET of uri answers statuscode
      std::string uri;
      std::vector<std::pair<std::string, std::vector<std::string>>> headers;
      int status = 200;
      std::chrono::milliseconds timeout{1'000};
      std::chrono::milliseconds interval{10'000};
      int threshold = 1;
    };
    std::vector<Http> http;
    struct Tcp {  // fails unless addr accepts a connection
      std::string addr;
      std::chrono::milliseconds timeout{1'000};
      std::chrono::milliseconds interval{10'000};
      int threshold = 1;
    };
    std::vector<Tcp> tcp;
  } health;
  // redis: registry:2 2.8's keys (addr), and 3.x's addrs (the first that answers is used).
  struct Redis {
    std::vector<std::string> addrs;  // host:port; empty: no Redis
    std::string username;
    std::string password;  // never logged
    int db = 0;
    std::chrono::milliseconds dial_timeout{1'000};
    std::chrono::milliseconds read_timeout{1'000};
    std::chrono::milliseconds write_timeout{1'000};
    int max_idle = 16;
    int max_active = 64;
    std::chrono::milliseconds idle_timeout{300'000};
    bool tls = false;
    bool enabled() const { return !addrs.empty(); }
  } redis;
  // proxy: a pull-through cache. registry:2's keys (remoteurl, username, password, ttl)
  // make the whole registry mirror one upstream (an upstream with an empty prefix); the
  // regfs extension `upstreams` mirrors several, each under its own repository prefix,
  // beside ordinary repositories that accept pushes.
  struct Upstream {
    std::string prefix;      // "" (every repository) or "hub" (hub/... from this upstream)
    std::string remote_url;  // scheme://host[:port], no path
    std::string username;    // empty: anonymous (a token server may still hand out tokens)
    std::string password;    // never logged
    // Content nobody pulled for this long is removed by garbage collection; 0: kept.
    std::chrono::milliseconds ttl{std::chrono::hours(168)};
    // A pull by tag asks the upstream where the tag points at most this often.
    std::chrono::milliseconds tag_check_interval{std::chrono::minutes(5)};
  };
  struct Proxy {
    std::vector<Upstream> upstreams;  // longest prefix first
    // Connect and read timeout of every upstream call.
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};
    // Where blobs being fetched are spooled while they stream to clients (local disk).
    std::string spool_directory = "/var/tmp/regfs-proxy";
    bool enabled() const { return !upstreams.empty(); }
  } proxy;

  // storage.cache.blobdescriptor: "inmemory" (this process), "redis" (shared by replicas)
  // or empty (none beyond regfs's own immutable-metadata caches).
  std::string blob_descriptor_cache;

  std::vector<std::string> warnings;
};

// Go's duration syntax as registry:2 writes it: one or more <integer><unit> with units h,
// m, s, ms ("1s", "500ms", "1m30s"); a bare integer is nanoseconds in Go, so it is refused.
Result<std::chrono::milliseconds> ParseGoDuration(const std::string& text);

// Reads `path` (empty: no file, all defaults), then applies REGISTRY_* variables from
// `environment` ("NAME=value" strings, as in environ). Errors name the key at fault.
Result<Config> LoadConfig(const std::string& path, const std::vector<std::string>& environment);

// What OpenBackend needs of the configuration.
StorageOptions StorageOptionsOf(const Config& config);

// Parses "host:port", ":port" or "[v6]:port".
Result<ListenAddress> ParseListenAddress(const std::string& text);

}  // namespace regfs
