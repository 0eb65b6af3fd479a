#include "regfs/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "notifications_config.h"
#include "proxy_config.h"
#include "service_config.h"
#include "yaml_values.h"

namespace regfs {

namespace {

// Every leaf key regfs reads. A key below one of these (e.g. http.headers.X-Foo) counts too.
const std::set<std::string>& SupportedKeys() {
  static const std::set<std::string> keys = {
      "version",
      "log.level",
      "log.formatter",
      "log.fields",
      "log.accesslog.disabled",
      "loglevel",
      "storage.filesystem.rootdirectory",
      "storage.filesystem.maxthreads",
      "storage.inmemory",
      "storage.delete.enabled",
      "storage.maintenance.readonly.enabled",
      "storage.maintenance.uploadpurging",
      "storage.maintenance.gc",
      // regfs keeps its own caches: honoured by design.
      "storage.cache.blobdescriptor",
      "storage.cache.blobdescriptorsize",
      "storage.redirect.disable",
      "proxy.remoteurl",
      "proxy.username",
      "proxy.password",
      "proxy.ttl",
      "storage.s3.accesskey",
      "storage.s3.secretkey",
      "storage.s3.sessiontoken",
      "storage.s3.region",
      "storage.s3.regionendpoint",
      "storage.s3.forcepathstyle",
      "storage.s3.bucket",
      "storage.s3.encrypt",
      "storage.s3.keyid",
      "storage.s3.secure",
      "storage.s3.skipverify",
      "storage.s3.v4auth",
      "storage.s3.chunksize",
      "storage.s3.multipartcopychunksize",
      "storage.s3.multipartcopymaxconcurrency",
      "storage.s3.multipartcopythresholdsize",
      "storage.s3.rootdirectory",
      "storage.s3.storageclass",
      "storage.oss.accesskeyid",
      "storage.oss.accesskeysecret",
      "storage.oss.region",
      "storage.oss.endpoint",
      "storage.oss.internal",
      "storage.oss.bucket",
      "storage.oss.encrypt",
      "storage.oss.secure",
      "storage.oss.chunksize",
      "storage.oss.rootdirectory",
      "http.addr",
      "http.net",
      "http.host",
      "http.secret",
      "http.relativeurls",
      "http.headers",
      "http.draintimeout",
      "http.debug.addr",
      "http.debug.prometheus.enabled",
      "http.debug.prometheus.path",
      "health.storagedriver.enabled",
      "health.storagedriver.interval",
      "health.storagedriver.threshold",
      "health.file",
      "health.http",
      "health.tcp",
      "redis.addr",
      "redis.addrs",
      "redis.username",
      "redis.password",
      "redis.db",
      "redis.dialtimeout",
      "redis.readtimeout",
      "redis.writetimeout",
      "redis.pool.maxidle",
      "redis.pool.maxactive",
      "redis.pool.idletimeout",
      "redis.tls.enabled",
      "http.http2.disabled",
      "http.tls.certificate",
      "http.tls.key",
      "http.tls.clientcas",
      "http.tls.minimumtls",
      "http.tls.ciphersuites",
      "auth.htpasswd.realm",
      "auth.htpasswd.path",
      "auth.token.realm",
      "auth.token.service",
      "auth.token.issuer",
      "auth.token.rootcertbundle",
      "auth.token.jwks",
      // regfs extensions (registry:2 ignores sections it does not know).
      "access",
      "limits.concurrentuploads",
      "limits.uploadsperrepository",
      "limits.connectionsperclient",
      "limits.headtimeout",
      "catalog.maxentries",
      "notifications.events.includereferences",
      "notifications.endpoints",
      "proxy.upstreams",
      "proxy.tagcheckinterval",
      "proxy.timeout",
      "proxy.spooldirectory",
  };
  return keys;
}

// Configuration that must not be ignored: serving without it would be less safe than asked.
const std::vector<std::pair<std::string, std::string>>& RefusedKeys() {
  static const std::vector<std::pair<std::string, std::string>> keys = {
      {"http.tls.letsencrypt", "Let's Encrypt is not supported; give http.tls.certificate and key"},
      {"auth.token.autoredirect", "token autoredirect is not supported; set auth.token.realm"},
      {"auth.token.signingalgorithms", "regfs accepts RS256/384/512 and ES256/384/512 only"},
      {"auth.silly", "silly authentication is a test mode regfs does not offer"},
      {"storage.azure", "the azure storage driver is not implemented"},
      {"storage.gcs", "the gcs storage driver is not implemented"},
      {"storage.swift", "the swift storage driver is not implemented"},
  };
  return keys;
}

bool IsSupported(const std::string& key) {
  const auto& keys = SupportedKeys();
  for (std::string k = key;; k = k.substr(0, k.rfind('.'))) {
    if (keys.count(k)) return true;
    if (k.find('.') == std::string::npos) return false;
  }
}

// A configuration is a small tree; these bounds only stop hostile YAML. An alias may point at
// its own ancestor (`a: &x {b: *x}` is a cycle) or be nested to expand exponentially, so the
// walk counts what it visits instead of trusting the shape.
constexpr int kMaxConfigDepth = 16;
constexpr size_t kMaxConfigNodes = 10000;

Status CollectLeaves(const YAML::Node& node, const std::string& prefix, int depth,
                     size_t* visited, std::vector<std::string>* out) {
  if (++*visited > kMaxConfigNodes)
    return Status::InvalidArgument("the configuration has more than " +
                                   std::to_string(kMaxConfigNodes) +
                                   " entries (recursive or exponential YAML aliases?)");
  if (node.IsMap() && node.size() > 0) {
    if (depth >= kMaxConfigDepth)
      return Status::InvalidArgument("configuration key " + prefix + " nests deeper than " +
                                     std::to_string(kMaxConfigDepth) +
                                     " levels (a recursive YAML alias?)");
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      REGFS_RETURN_IF_ERROR(CollectLeaves(kv.second, prefix.empty() ? key : prefix + "." + key,
                                          depth + 1, visited, out));
    }
  } else if (!prefix.empty()) {
    out->push_back(prefix);
  }
  return Status::Ok();
}

YAML::Node Lookup(const YAML::Node& root, const std::string& dotted) {
  YAML::Node node = YAML::Clone(root);
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    std::string part =
        dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node.IsMap() || !node[part]) return YAML::Node(YAML::NodeType::Undefined);
    node = node[part];
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

void SetPath(YAML::Node node, const std::vector<std::string>& parts, size_t i,
             const std::string& value) {
  if (i + 1 == parts.size()) {
    node[parts[i]] = value;
    return;
  }
  if (!node[parts[i]] || !node[parts[i]].IsMap()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
  SetPath(node[parts[i]], parts, i + 1, value);
}

// REGISTRY_HTTP_ADDR=x sets http.addr; each "_" is one level of nesting.
void ApplyEnvironment(YAML::Node& root, const std::vector<std::string>& environment) {
  for (const std::string& entry : environment) {
    if (!entry.starts_with("REGISTRY_")) continue;
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string name = entry.substr(9, eq - 9);
    std::string value = entry.substr(eq + 1);
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= name.size()) {
      size_t us = name.find('_', start);
      std::string part =
          name.substr(start, us == std::string::npos ? std::string::npos : us - start);
      std::transform(part.begin(), part.end(), part.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!part.empty()) parts.push_back(part);
      if (us == std::string::npos) break;
      start = us + 1;
    }
    if (!parts.empty()) {
      if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
      SetPath(root, parts, 0, value);
    }
  }
}

Result<std::chrono::seconds> ParseDuration(const std::string& text) {
  // Go duration subset: a number followed by s, m or h (e.g. "30s", "1m"); bare seconds too.
  size_t pos = 0;
  long value = 0;
  try {
    value = std::stol(text, &pos);
  } catch (...) {
    return Status::InvalidArgument("'" + text + "' is not a duration");
  }
  std::string unit = text.substr(pos);
  long per_unit = 0;
  if (unit == "s" || unit.empty()) per_unit = 1;
  if (unit == "m") per_unit = 60;
  if (unit == "h") per_unit = 3600;
  if (unit == "ms") return std::chrono::seconds(value / 1000);
  if (per_unit == 0) return Status::InvalidArgument("'" + text + "' is not a duration (use s, m or h)");
  // A century is more than any timeout or interval needs, and keeps the product in range.
  constexpr long kMaxSeconds = 100L * 365 * 24 * 3600;
  if (value > kMaxSeconds / per_unit || value < -kMaxSeconds / per_unit)
    return Status::InvalidArgument("'" + text + "' is out of range");
  return std::chrono::seconds(value * per_unit);
}

template <typename T>
Status Read(const YAML::Node& root, const std::string& key, T* out) {
  YAML::Node node = Lookup(root, key);
  if (!node || node.IsNull()) return Status::Ok();
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument("configuration key " + key + " has an invalid value");
  }
  return Status::Ok();
}

// The value of NAME in environ-style "NAME=value" strings; empty when absent.
std::string EnvironmentValue(const std::vector<std::string>& environment, const std::string& name) {
  for (const std::string& entry : environment) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
  }
  return "";
}

Status ReadSize(const YAML::Node& root, const std::string& key, uint64_t* out) {
  int64_t value = static_cast<int64_t>(*out);
  REGFS_RETURN_IF_ERROR(Read(root, key, &value));
  if (value <= 0) return Status::InvalidArgument(key + " must be a positive number of bytes");
  *out = static_cast<uint64_t>(value);
  return Status::Ok();
}

// storage.s3 as registry:2 reads it; the AWS environment fills what the file leaves out.
Status ReadS3(const YAML::Node& root, const std::vector<std::string>& environment,
              S3StorageOptions* s3) {
  const std::string k = "storage.s3.";
  s3->access_key = EnvironmentValue(environment, "AWS_ACCESS_KEY_ID");
  s3->secret_key = EnvironmentValue(environment, "AWS_SECRET_ACCESS_KEY");
  s3->session_token = EnvironmentValue(environment, "AWS_SESSION_TOKEN");
  if (std::string r = EnvironmentValue(environment, "AWS_REGION"); !r.empty()) s3->region = r;
  s3->ca_bundle = EnvironmentValue(environment, "AWS_CA_BUNDLE");
  for (auto [key, target] : {std::pair{"accesskey", &s3->access_key},
                             std::pair{"secretkey", &s3->secret_key},
                             std::pair{"sessiontoken", &s3->session_token},
                             std::pair{"region", &s3->region},
                             std::pair{"regionendpoint", &s3->region_endpoint},
                             std::pair{"bucket", &s3->bucket},
                             std::pair{"keyid", &s3->key_id},
                             std::pair{"rootdirectory", &s3->root_directory},
                             std::pair{"storageclass", &s3->storage_class}}) {
    REGFS_RETURN_IF_ERROR(Read(root, k + key, target));
  }
  if (YAML::Node n = Lookup(root, k + "forcepathstyle"); n && !n.IsNull()) {
    bool value = false;
    REGFS_RETURN_IF_ERROR(Read(root, k + "forcepathstyle", &value));
    s3->force_path_style = value;
  }
  for (auto [key, target] : {std::pair{"encrypt", &s3->encrypt}, std::pair{"secure", &s3->secure},
                             std::pair{"skipverify", &s3->skip_verify}}) {
    REGFS_RETURN_IF_ERROR(Read(root, k + key, target));
  }
  bool v4auth = true;
  REGFS_RETURN_IF_ERROR(Read(root, k + "v4auth", &v4auth));
  if (!v4auth) {
    return Status::InvalidArgument("storage.s3.v4auth: false asks for AWS signature version 2,"
                                   " which regfs does not speak (every current store takes v4)");
  }
  for (auto [key, target] :
       {std::pair{"chunksize", &s3->chunk_size},
        std::pair{"multipartcopychunksize", &s3->multipart_copy_chunk_size},
        std::pair{"multipartcopythresholdsize", &s3->multipart_copy_threshold}}) {
    REGFS_RETURN_IF_ERROR(ReadSize(root, k + key, target));
  }
  REGFS_RETURN_IF_ERROR(
      Read(root, k + "multipartcopymaxconcurrency", &s3->multipart_copy_max_concurrency));
  if (s3->multipart_copy_max_concurrency <= 0) {
    return Status::InvalidArgument("storage.s3.multipartcopymaxconcurrency must be positive");
  }
  if (s3->bucket.empty()) return Status::InvalidArgument("storage.s3 needs a bucket");
  if (s3->region.empty()) return Status::InvalidArgument("storage.s3 needs a region");
  return Status::Ok();
}

// registry:2 2.8's storage.oss, served through OSS's S3-compatible API: virtual-hosted
// addressing only, parts from 100 KB, CopyObject up to 1 GB.
Status ReadOss(const YAML::Node& root, S3StorageOptions* s3) {
  const std::string k = "storage.oss.";
  std::string endpoint;
  bool internal = false;
  for (auto [key, target] : {std::pair{"accesskeyid", &s3->access_key},
                             std::pair{"accesskeysecret", &s3->secret_key},
                             std::pair{"region", &s3->region},
                             std::pair{"endpoint", &endpoint},
                             std::pair{"bucket", &s3->bucket},
                             std::pair{"rootdirectory", &s3->root_directory}}) {
    REGFS_RETURN_IF_ERROR(Read(root, k + key, target));
  }
  REGFS_RETURN_IF_ERROR(Read(root, k + "internal", &internal));
  REGFS_RETURN_IF_ERROR(Read(root, k + "encrypt", &s3->encrypt));
  REGFS_RETURN_IF_ERROR(Read(root, k + "secure", &s3->secure));
  REGFS_RETURN_IF_ERROR(ReadSize(root, k + "chunksize", &s3->chunk_size));
  if (s3->bucket.empty()) return Status::InvalidArgument("storage.oss needs a bucket");
  if (s3->region.empty()) return Status::InvalidArgument("storage.oss needs a region");
  if (!s3->region.starts_with("oss-")) s3->region = "oss-" + s3->region;
  // OSS's S3 API lives at s3.<region>[-internal].aliyuncs.com; a custom endpoint is taken
  // as given (it must then be that API's).
  s3->region_endpoint =
      endpoint.empty() ? "s3." + s3->region + (internal ? "-internal" : "") + ".aliyuncs.com"
                       : endpoint;
  s3->force_path_style = false;
  s3->storage_class = "NONE";
  s3->min_part_size = 100 * 1024;
  s3->max_single_copy = uint64_t{1} << 30;
  return Status::Ok();
}

Status ReadTokenAuth(const YAML::Node& root, Config::Token* token) {
  if (!Lookup(root, "auth.token")) return Status::Ok();
  REGFS_RETURN_IF_ERROR(Read(root, "auth.token.realm", &token->realm));
  REGFS_RETURN_IF_ERROR(Read(root, "auth.token.service", &token->service));
  REGFS_RETURN_IF_ERROR(Read(root, "auth.token.issuer", &token->issuer));
  REGFS_RETURN_IF_ERROR(Read(root, "auth.token.rootcertbundle", &token->root_cert_bundle));
  REGFS_RETURN_IF_ERROR(Read(root, "auth.token.jwks", &token->jwks));
  for (auto [key, value] : {std::pair{"realm", &token->realm}, std::pair{"service", &token->service},
                            std::pair{"issuer", &token->issuer}}) {
    if (value->empty()) return Status::InvalidArgument(std::string("auth.token needs ") + key);
  }
  if (token->root_cert_bundle.empty() && token->jwks.empty()) {
    return Status::InvalidArgument("auth.token needs rootcertbundle or jwks to verify tokens");
  }
  return Status::Ok();
}

const std::set<std::string>& KnownActions() {
  static const std::set<std::string> actions = {"pull", "push", "delete", "*"};
  return actions;
}

Result<std::vector<std::string>> ReadActions(const YAML::Node& node, const std::string& where) {
  std::vector<std::string> actions;
  if (node.IsScalar()) {
    actions.push_back(node.as<std::string>());
  } else if (node.IsSequence()) {
    for (const auto& a : node) {
      if (!a.IsScalar()) return Status::InvalidArgument(where + " must list actions");
      actions.push_back(a.as<std::string>());
    }
  } else {
    return Status::InvalidArgument(where + " must list actions (pull, push, delete)");
  }
  for (const auto& a : actions) {
    if (!KnownActions().count(a))
      return Status::InvalidArgument(where + ": unknown action '" + a +
                                     "' (use pull, push, delete or *)");
  }
  return actions;
}

Result<std::map<std::string, std::vector<std::string>>> ReadGrantMap(const YAML::Node& node,
                                                                     const std::string& where) {
  if (!node.IsMap()) return Status::InvalidArgument(where + " must map names to actions");
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& kv : node) {
    std::string name = kv.first.as<std::string>();
    auto actions = ReadActions(kv.second, where + "." + name);
    if (!actions.ok()) return actions.status();
    out[name] = *actions;
  }
  return out;
}

Status ReadAccess(const YAML::Node& root, Config::Access* access) {
  YAML::Node section = Lookup(root, "access");
  if (!section) return Status::Ok();
  if (!section.IsMap()) return Status::InvalidArgument("access must be a map with rules");
  access->enabled = true;
  for (const auto& kv : section) {
    std::string key = kv.first.as<std::string>();
    if (key != "groups" && key != "rules")
      return Status::InvalidArgument("access." + key + " is unknown (use groups and rules)");
  }
  if (YAML::Node groups = section["groups"]; groups && !groups.IsNull()) {
    if (!groups.IsMap()) return Status::InvalidArgument("access.groups must map groups to users");
    for (const auto& kv : groups) {
      std::string group = kv.first.as<std::string>();
      if (!kv.second.IsSequence())
        return Status::InvalidArgument("access.groups." + group + " must list user names");
      for (const auto& user : kv.second) access->groups[group].push_back(user.as<std::string>());
    }
  }
  YAML::Node rules = section["rules"];
  if (!rules || rules.IsNull()) return Status::Ok();  // nothing granted to anyone
  if (!rules.IsSequence()) return Status::InvalidArgument("access.rules must be a list");
  for (size_t i = 0; i < rules.size(); ++i) {
    const YAML::Node& r = rules[i];
    std::string where = "access.rules[" + std::to_string(i) + "]";
    if (!r.IsMap()) return Status::InvalidArgument(where + " must be a map");
    Config::AccessRule rule;
    for (const auto& kv : r) {
      std::string key = kv.first.as<std::string>();
      std::string at = where + "." + key;
      if (key == "repository") {
        rule.repository = kv.second.as<std::string>();
      } else if (key == "anonymous" || key == "authenticated") {
        auto actions = ReadActions(kv.second, at);
        if (!actions.ok()) return actions.status();
        (key == "anonymous" ? rule.anonymous : rule.authenticated) = *actions;
      } else if (key == "users" || key == "groups") {
        auto grants = ReadGrantMap(kv.second, at);
        if (!grants.ok()) return grants.status();
        (key == "users" ? rule.users : rule.groups) = *grants;
      } else {
        return Status::InvalidArgument(
            at + " is unknown (use repository, anonymous, authenticated, users, groups)");
      }
    }
    if (rule.repository.empty()) return Status::InvalidArgument(where + " needs a repository");
    for (const auto& [group, actions] : rule.groups) {
      if (!access->groups.count(group))
        return Status::InvalidArgument(where + " names group '" + group +
                                       "', which access.groups does not define");
    }
    access->rules.push_back(std::move(rule));
  }
  return Status::Ok();
}

}  // namespace

std::string ListenAddress::ToString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (h.empty() ? "0.0.0.0" : h) + ":" + std::to_string(port);
}

Result<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress a;
  size_t colon = text.rfind(':');
  if (colon == std::string::npos)
    return Status::InvalidArgument("http.addr '" + text + "' has no port");
  a.host = text.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) {
    return Status::InvalidArgument("http.addr '" + text + "' has an invalid port");
  }
  a.port = std::stoi(port);
  if (a.port > 65535)
    return Status::InvalidArgument("http.addr '" + text + "' has an invalid port");
  return a;
}

namespace {

Result<Config> ParseConfig(const std::string& path, const std::vector<std::string>& environment) {
  YAML::Node root(YAML::NodeType::Map);
  if (!path.empty()) {
    try {
      root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
      return Status::NotFound("cannot read configuration file " + path);
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument("configuration file " + path +
                                     " is not valid YAML: " + e.what());
    }
    if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap())
      return Status::InvalidArgument("configuration file " + path + " is not a YAML map");
  }
  ApplyEnvironment(root, environment);

  Config c;
  std::vector<std::string> leaves;
  size_t visited = 0;
  REGFS_RETURN_IF_ERROR(CollectLeaves(root, "", 0, &visited, &leaves));
  for (const std::string& key : leaves) {
    for (const auto& [refused, why] : RefusedKeys()) {
      if (key == refused || key.starts_with(refused + ".")) {
        return Status::InvalidArgument("configuration key " + key + ": " + why);
      }
    }
    if (!IsSupported(key))
      c.warnings.push_back("configuration key " + key +
                           " is not supported by regfs yet and is ignored");
  }

  REGFS_RETURN_IF_ERROR(Read(root, "loglevel", &c.log_level));
  REGFS_RETURN_IF_ERROR(Read(root, "log.level", &c.log_level));
  REGFS_RETURN_IF_ERROR(Read(root, "log.formatter", &c.log_formatter));
  bool access_disabled = false;
  REGFS_RETURN_IF_ERROR(Read(root, "log.accesslog.disabled", &access_disabled));
  c.access_log = !access_disabled;
  if (YAML::Node fields = Lookup(root, "log.fields"); fields && fields.IsMap()) {
    for (const auto& kv : fields)
      c.log_fields[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  static const std::set<std::string> kLevels = {"error", "warn", "warning", "info", "debug"};
  if (!kLevels.count(c.log_level))
    return Status::InvalidArgument("log.level must be error, warn, info or debug");
  if (c.log_formatter != "text" && c.log_formatter != "json") {
    if (c.log_formatter == "logstash") {
      c.warnings.push_back("log.formatter logstash is not supported; using json");
      c.log_formatter = "json";
    } else {
      return Status::InvalidArgument("log.formatter must be text or json");
    }
  }

  int drivers = 0;
  for (const char* kind : {"filesystem", "inmemory", "s3", "oss"}) {
    if (Lookup(root, std::string("storage.") + kind)) ++drivers;
  }
  if (drivers > 1) {
    return Status::InvalidArgument(
        "storage names more than one driver (filesystem, inmemory, s3, oss): keep one");
  }
  if (Lookup(root, "storage.inmemory")) c.storage_driver = "inmemory";
  REGFS_RETURN_IF_ERROR(Read(root, "storage.filesystem.rootdirectory", &c.root_directory));
  if (Lookup(root, "storage.filesystem")) c.storage_driver = "filesystem";
  if (Lookup(root, "storage.s3")) {
    c.storage_driver = "s3";
    REGFS_RETURN_IF_ERROR(ReadS3(root, environment, &c.s3));
  }
  if (Lookup(root, "storage.oss")) {
    c.storage_driver = "s3";
    REGFS_RETURN_IF_ERROR(ReadOss(root, &c.s3));
  }
  REGFS_RETURN_IF_ERROR(
      ReadNotifications(Lookup(root, "notifications"), &c.notifications));
  REGFS_RETURN_IF_ERROR(ReadProxy(Lookup(root, "proxy"), &c.proxy));
  REGFS_RETURN_IF_ERROR(Read(root, "storage.redirect.disable", &c.redirect_disabled));
  REGFS_RETURN_IF_ERROR(Read(root, "storage.delete.enabled", &c.delete_enabled));
  REGFS_RETURN_IF_ERROR(Read(root, "storage.maintenance.readonly.enabled", &c.read_only));

  REGFS_RETURN_IF_ERROR(
      Read(root, "storage.maintenance.uploadpurging.enabled", &c.upload_purging.enabled));
  REGFS_RETURN_IF_ERROR(
      Read(root, "storage.maintenance.uploadpurging.dryrun", &c.upload_purging.dry_run));
  for (auto [key, target] :
       {std::pair{"storage.maintenance.uploadpurging.age", &c.upload_purging.age},
        std::pair{"storage.maintenance.uploadpurging.interval", &c.upload_purging.interval}}) {
    if (YAML::Node n = Lookup(root, key); n && !n.IsNull()) {
      auto d = ParseDuration(n.as<std::string>());
      if (!d.ok()) return Status::InvalidArgument(std::string(key) + ": " + d.status().message());
      if (d->count() <= 0) return Status::InvalidArgument(std::string(key) + " must be positive");
      *target = *d;
    }
  }

  REGFS_RETURN_IF_ERROR(Read(root, "storage.maintenance.gc.enabled", &c.gc.enabled));
  REGFS_RETURN_IF_ERROR(Read(root, "storage.maintenance.gc.dryrun", &c.gc.dry_run));
  REGFS_RETURN_IF_ERROR(
      Read(root, "storage.maintenance.gc.deleteuntagged", &c.gc.delete_untagged));
  for (auto [key, target, zero_ok] :
       {std::tuple{"storage.maintenance.gc.interval", &c.gc.interval, false},
        std::tuple{"storage.maintenance.gc.grace", &c.gc.grace, true}}) {
    if (YAML::Node n = Lookup(root, key); n && !n.IsNull()) {
      auto d = ParseDuration(n.as<std::string>());
      if (!d.ok()) return Status::InvalidArgument(std::string(key) + ": " + d.status().message());
      if (d->count() < 0 || (d->count() == 0 && !zero_ok)) {
        return Status::InvalidArgument(std::string(key) + " must be positive");
      }
      *target = *d;
    }
  }
  if (c.gc.enabled && c.read_only) {
    c.warnings.push_back(
        "storage.maintenance.gc is enabled but the registry is read-only: it will not run");
  }

  std::string addr = ":5000";
  REGFS_RETURN_IF_ERROR(Read(root, "http.addr", &addr));
  auto parsed_addr = ParseListenAddress(addr);
  if (!parsed_addr.ok()) return parsed_addr.status();
  c.addr = *parsed_addr;
  std::string net = "tcp";
  REGFS_RETURN_IF_ERROR(Read(root, "http.net", &net));
  if (net != "tcp")
    return Status::InvalidArgument("http.net " + net + " is not supported (only tcp)");
  REGFS_RETURN_IF_ERROR(Read(root, "http.host", &c.host));
  while (!c.host.empty() && c.host.back() == '/') c.host.pop_back();
  REGFS_RETURN_IF_ERROR(Read(root, "http.relativeurls", &c.relative_urls));
  REGFS_RETURN_IF_ERROR(Read(root, "http.secret", &c.secret));
  if (YAML::Node drain = Lookup(root, "http.draintimeout"); drain && !drain.IsNull()) {
    auto d = ParseDuration(drain.as<std::string>());
    if (!d.ok()) return Status::InvalidArgument("http.draintimeout: " + d.status().message());
    if (d->count() < 0) return Status::InvalidArgument("http.draintimeout must not be negative");
    c.drain_timeout = *d;
  }
  c.headers = HeaderMap(Lookup(root, "http.headers"));
  REGFS_RETURN_IF_ERROR(Read(root, "http.tls.certificate", &c.tls.certificate));
  REGFS_RETURN_IF_ERROR(Read(root, "http.tls.key", &c.tls.key));
  REGFS_RETURN_IF_ERROR(Read(root, "http.tls.minimumtls", &c.tls.minimum));
  for (auto [key, list] : {std::pair{"http.tls.clientcas", &c.tls.client_cas},
                           std::pair{"http.tls.ciphersuites", &c.tls.cipher_suites}}) {
    if (YAML::Node n = Lookup(root, key); n && n.IsSequence()) {
      for (const auto& v : n) list->push_back(v.as<std::string>());
    } else if (n && n.IsScalar()) {
      list->push_back(n.as<std::string>());
    }
  }
  if (c.tls.certificate.empty() != c.tls.key.empty()) {
    return Status::InvalidArgument("http.tls needs both certificate and key");
  }
  static const std::set<std::string> kTlsVersions = {"tls1.0", "tls1.1", "tls1.2", "tls1.3"};
  if (!kTlsVersions.count(c.tls.minimum)) {
    return Status::InvalidArgument("http.tls.minimumtls must be tls1.0, tls1.1, tls1.2 or tls1.3");
  }
  REGFS_RETURN_IF_ERROR(Read(root, "auth.htpasswd.realm", &c.htpasswd.realm));
  REGFS_RETURN_IF_ERROR(Read(root, "auth.htpasswd.path", &c.htpasswd.path));
  if (Lookup(root, "auth.htpasswd") && c.htpasswd.path.empty()) {
    return Status::InvalidArgument("auth.htpasswd needs a path");
  }
  if (c.htpasswd.realm.empty()) c.htpasswd.realm = "Registry Realm";

  REGFS_RETURN_IF_ERROR(ReadTokenAuth(root, &c.token));
  if (c.token.enabled() && c.htpasswd.enabled()) {
    return Status::InvalidArgument("configure either auth.htpasswd or auth.token, not both");
  }
  REGFS_RETURN_IF_ERROR(ReadAccess(root, &c.access));
  for (auto [key, target] : {std::pair{"limits.concurrentuploads", &c.limits.concurrent_uploads},
                             std::pair{"limits.uploadsperrepository",
                                       &c.limits.uploads_per_repository}}) {
    int value = static_cast<int>(*target);
    REGFS_RETURN_IF_ERROR(Read(root, key, &value));
    if (value <= 0) return Status::InvalidArgument(std::string(key) + " must be positive");
    *target = static_cast<size_t>(value);
  }
  int per_client = static_cast<int>(c.limits.connections_per_client);
  REGFS_RETURN_IF_ERROR(Read(root, "limits.connectionsperclient", &per_client));
  if (per_client < 0) {
    return Status::InvalidArgument("limits.connectionsperclient must not be negative (0: none)");
  }
  c.limits.connections_per_client = static_cast<size_t>(per_client);
  if (YAML::Node n = Lookup(root, "limits.headtimeout"); n && !n.IsNull()) {
    auto d = ParseDuration(n.as<std::string>());
    if (!d.ok()) return Status::InvalidArgument("limits.headtimeout: " + d.status().message());
    if (d->count() <= 0) return Status::InvalidArgument("limits.headtimeout must be positive");
    c.limits.head_timeout = *d;
  }

  REGFS_RETURN_IF_ERROR(ReadServiceSections(root, &c));

  int max_entries = static_cast<int>(c.catalog_max_entries);
  REGFS_RETURN_IF_ERROR(Read(root, "catalog.maxentries", &max_entries));
  if (max_entries <= 0) return Status::InvalidArgument("catalog.maxentries must be positive");
  c.catalog_max_entries = static_cast<size_t>(max_entries);
  return c;
}

}  // namespace

StorageOptions StorageOptionsOf(const Config& config) {
  StorageOptions options;
  options.driver = config.storage_driver;
  options.root_directory = config.root_directory;
  options.s3 = config.s3;
  options.read_only = config.read_only;
  options.descriptor_cache = config.blob_descriptor_cache;
  const Config::Redis& r = config.redis;
  options.redis = {.addrs = r.addrs,
                   .username = r.username,
                   .password = r.password,
                   .db = r.db,
                   .dial_timeout = r.dial_timeout,
                   .read_timeout = r.read_timeout,
                   .write_timeout = r.write_timeout,
                   .max_idle = r.max_idle,
                   .max_active = r.max_active,
                   .idle_timeout = r.idle_timeout};
  return options;
}

Result<Config> LoadConfig(const std::string& path, const std::vector<std::string>& environment) {
  try {
    return ParseConfig(path, environment);
  } catch (const YAML::Exception& e) {
    // A value of the wrong shape somewhere (a map where a string belongs, ...).
    return Status::InvalidArgument("configuration " + (path.empty() ? std::string("environment") : path) +
                                   " has a value of the wrong type: " + e.what());
  }
}

}  // namespace regfs
