// A manifest reference as a client writes it after /manifests/: a tag or a digest.
//
// Parsed once at the edge, so the rest of core works with a typed value: a digest is a
// Digest, a tag is a string that ValidateTag accepted (and so a safe storage path component).
// Reference is a value type.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "regfs/core/digest.h"
#include "regfs/core/status.h"

namespace regfs {

// The longest reference text a lookup treats as "names no manifest" when it does not parse:
// the longest digest we know (sha512, 135 characters). Longer text is refused as invalid.
inline constexpr size_t kMaxReferenceLength = 135;

class Reference {
 public:
  // A digest when `text` has the digest shape (it contains ':'), else a tag.
  // Fails with InvalidArgument / kDigestInvalid or kTagInvalid naming what is wrong.
  static Result<Reference> Parse(std::string_view text);

  static Reference OfDigest(Digest digest) { return Reference(std::move(digest)); }

  bool is_digest() const { return digest_.has_value(); }
  // REQUIRES: is_digest().
  const Digest& digest() const { return *digest_; }
  // REQUIRES: !is_digest().
  const std::string& tag() const { return tag_; }
  std::string ToString() const { return is_digest() ? digest_->ToString() : tag_; }

 private:
  explicit Reference(Digest digest) : digest_(std::move(digest)) {}
  explicit Reference(std::string tag) : tag_(std::move(tag)) {}
  std::optional<Digest> digest_;
  std::string tag_;
};

// For lookups (GET, HEAD, DELETE): a reference that cannot name anything stored is simply
// not found. Returns `not_found` for unparsable text up to kMaxReferenceLength characters,
// the parse error for longer text, and OK when `parsed` is OK.
Status LookupStatusOf(const Result<Reference>& parsed, std::string_view text, Status not_found);

}  // namespace regfs
