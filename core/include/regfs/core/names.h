// Validation of the names a client chooses: repository names and tags.
//
// The rules are the OCI Distribution Spec's grammar, which also guarantees that a validated
// name is a safe relative storage path: no "..", no empty or leading-underscore components
// (so a repository can never collide with "_layers", "_manifests" or "_uploads").
#pragma once

#include <string_view>

#include "regfs/core/status.h"

namespace regfs {

// Longest repository name accepted (registry:2's limit).
inline constexpr size_t kMaxRepositoryNameLength = 255;
inline constexpr size_t kMaxTagLength = 128;

// OK, or InvalidArgument / kNameInvalid naming what is wrong.
Status ValidateRepositoryName(std::string_view name);
// OK, or InvalidArgument / kTagInvalid.
Status ValidateTag(std::string_view tag);
// True when `reference` has the shape of a digest ("alg:..."), as opposed to a tag.
bool LooksLikeDigest(std::string_view reference);

}  // namespace regfs
