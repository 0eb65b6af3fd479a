#include "regfs/core/reference.h"

#include "regfs/core/names.h"

namespace regfs {

Result<Reference> Reference::Parse(std::string_view text) {
  if (LooksLikeDigest(text)) {
    auto digest = Digest::Parse(text);
    if (!digest.ok()) return digest.status();
    return Reference(std::move(*digest));
  }
  REGFS_RETURN_IF_ERROR(ValidateTag(text));
  return Reference(std::string(text));
}

Status LookupStatusOf(const Result<Reference>& parsed, std::string_view text, Status not_found) {
  if (parsed.ok()) return Status::Ok();
  // Nothing is ever stored under a name that does not parse, so the honest answer to "give
  // me X" is "there is no X" (what the OCI conformance suite and registry:2 expect).
  return text.size() <= kMaxReferenceLength ? not_found : parsed.status();
}

}  // namespace regfs
