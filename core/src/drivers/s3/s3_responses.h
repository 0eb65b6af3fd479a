// The XML bodies S3 answers with, read into values (Poco's DOM parser underneath). Each
// parser fails with IOError naming what it expected when the body is not that document, so
// a store that answers something else is reported, never half-understood.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "regfs/core/status.h"

namespace regfs::s3 {

// <Error><Code>NoSuchKey</Code><Message>...</Message></Error>; empty fields when the body is
// not an error document (HEAD responses have no body at all).
struct ErrorBody {
  std::string code;
  std::string message;
};
ErrorBody ParseError(std::string_view xml);

// ListObjectsV2 (ListBucketResult): keys and common prefixes as sent (not decoded: regfs
// never asks for encoding-type=url), and the token of the next page.
struct ListPage {
  std::vector<std::string> keys;
  std::vector<std::string> prefixes;
  bool truncated = false;
  std::string next_token;
};
Result<ListPage> ParseListObjects(std::string_view xml);

// InitiateMultipartUploadResult: the upload id.
Result<std::string> ParseUploadId(std::string_view xml);

// CopyObjectResult / CopyPartResult: the new ETag. A copy can fail after its 200 status
// line was sent; S3 then puts an <Error> document in the body, returned here as IOError.
Result<std::string> ParseCopyETag(std::string_view xml);

// CompleteMultipartUploadResult: OK, or the <Error> S3 may send with a 200 status.
Status ParseCompletion(std::string_view xml);

// DeleteResult: the keys S3 could not delete, as one IOError naming the first; OK if none.
Status ParseDeleteResult(std::string_view xml);

// Escapes text for an XML element body (&, <, >).
std::string XmlEscape(std::string_view text);

}  // namespace regfs::s3
