// One ChangeEvent as a JSON object: the form both the change feed's journal and the change
// log store it in. Empty fields are left out; field names are stable (they are on disk).
#pragma once

#include <Poco/JSON/Object.h>

#include "regfs/core/registry.h"
#include "regfs/core/status.h"

namespace regfs {

// Without `with_media_type` the media type (the one field a client chooses freely, so of
// any length) is left out.
Poco::JSON::Object EventToJson(const ChangeEvent& event, bool with_media_type = true);
// Corruption when the object is not an event this version knows.
Result<ChangeEvent> EventFromJson(const Poco::JSON::Object& object);

}  // namespace regfs
