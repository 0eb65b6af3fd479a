// ChangeRecord: one entry of the change log as regfs writes it: what one registry operation
// (an HTTP request, a file operation on the mount) did, and who asked for it. Consumers
// (webhook delivery, garbage collection) read these back from the log.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "regfs/core/registry.h"
#include "regfs/core/status.h"

namespace regfs {

// The HTTP request behind a change, as registry:2's events describe it.
struct RequestInfo {
  std::string id;  // unique per request
  std::string addr;  // the client's address
  std::string host;  // the Host the client asked for
  std::string method;
  std::string user_agent;
};

struct ChangeRecord {
  std::vector<ChangeEvent> events;  // in the order they happened; never upload start/end
  std::string actor;                // the authenticated user; empty when anonymous
  std::string instance;             // the process that made the change: an id per start
  std::string source_addr;          // that process's address ("host:port")
  RequestInfo request;              // empty for changes of the mount or of maintenance
};

// JSON, with stable field names (it is stored). Decode fails with Corruption on anything
// that is not a record.
std::string EncodeChangeRecord(const ChangeRecord& record);
Result<ChangeRecord> DecodeChangeRecord(std::string_view body);

}  // namespace regfs
