// Random (version 4) UUIDs: upload ids, request ids, process instance ids.
#pragma once

#include <string>

namespace regfs {

// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lower case. Thread-safe.
std::string NewUuid();

}  // namespace regfs
