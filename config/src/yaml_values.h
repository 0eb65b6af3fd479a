// Value shapes several configuration sections share, read the way registry:2 reads them.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>
#include <vector>

namespace regfs {

// A string or a list of strings (headers' values, ignored media types): always a list.
inline std::vector<std::string> ScalarOrList(const YAML::Node& node) {
  std::vector<std::string> out;
  if (node && node.IsSequence()) {
    for (const auto& v : node) out.push_back(v.as<std::string>());
  } else if (node && node.IsScalar()) {
    out.push_back(node.as<std::string>());
  }
  return out;
}

// A map of header name to value or values (http.headers, health.http[].headers), in the
// file's order. Nothing when the node is no map.
inline std::vector<std::pair<std::string, std::vector<std::string>>> HeaderMap(
    const YAML::Node& node) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  if (!node || !node.IsMap()) return out;
  for (const auto& kv : node) out.emplace_back(kv.first.as<std::string>(), ScalarOrList(kv.second));
  return out;
}

}  // namespace regfs
