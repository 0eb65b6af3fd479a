#include "drivers/s3/s3_responses.h"

#include <Poco/DOM/AutoPtr.h>
#include <Poco/DOM/DOMParser.h>
#include <Poco/DOM/Document.h>
#include <Poco/DOM/Element.h>
#include <Poco/DOM/Node.h>
#include <Poco/Exception.h>
#include <Poco/SAX/XMLReader.h>

#include <functional>

namespace regfs::s3 {
namespace {

using Poco::XML::AutoPtr;
using Poco::XML::Document;
using Poco::XML::Element;
using Poco::XML::Node;

// The parsed document, or null when the text is not XML. External entities stay off: the
// body comes from a network peer.
AutoPtr<Document> Parse(std::string_view xml) {
  if (xml.empty()) return nullptr;
  try {
    Poco::XML::DOMParser parser;
    parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_GENERAL_ENTITIES, false);
    parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_PARAMETER_ENTITIES, false);
    return parser.parseMemory(xml.data(), xml.size());
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

// Calls fn for each child element of `parent` named `name` (namespace ignored: S3 puts its
// own on the root, compatible stores sometimes none).
void EachChild(const Element* parent, const std::string& name,
               const std::function<void(const Element&)>& fn) {
  for (Node* n = parent->firstChild(); n != nullptr; n = n->nextSibling()) {
    if (n->nodeType() != Node::ELEMENT_NODE) continue;
    const auto* e = static_cast<const Element*>(n);
    if (e->localName() == name || e->nodeName() == name) fn(*e);
  }
}

std::string ChildText(const Element* parent, const std::string& name) {
  std::string out;
  bool found = false;
  EachChild(parent, name, [&](const Element& e) {
    if (!found) out = e.innerText();
    found = true;
  });
  return out;
}

bool IsNamed(const Element* e, const std::string& name) {
  return e != nullptr && (e->localName() == name || e->nodeName() == name);
}

Status NotThe(const std::string& what, std::string_view xml) {
  ErrorBody error = ParseError(xml);
  if (!error.code.empty()) return Status::IOError(error.code + ": " + error.message);
  return Status::IOError("the object store answered something that is not " + what);
}

}  // namespace

ErrorBody ParseError(std::string_view xml) {
  AutoPtr<Document> doc = Parse(xml);
  if (doc.isNull() || !IsNamed(doc->documentElement(), "Error")) return {};
  return {ChildText(doc->documentElement(), "Code"), ChildText(doc->documentElement(), "Message")};
}

Result<ListPage> ParseListObjects(std::string_view xml) {
  AutoPtr<Document> doc = Parse(xml);
  if (doc.isNull() || !IsNamed(doc->documentElement(), "ListBucketResult")) {
    return NotThe("a ListBucketResult", xml);
  }
  const Element* root = doc->documentElement();
  ListPage page;
  EachChild(root, "Contents",
            [&](const Element& e) { page.keys.push_back(ChildText(&e, "Key")); });
  EachChild(root, "CommonPrefixes",
            [&](const Element& e) { page.prefixes.push_back(ChildText(&e, "Prefix")); });
  page.truncated = ChildText(root, "IsTruncated") == "true";
  page.next_token = ChildText(root, "NextContinuationToken");
  if (page.truncated && page.next_token.empty()) {
    return Status::IOError("the object store sent a truncated listing without a continuation");
  }
  return page;
}

Result<std::string> ParseUploadId(std::string_view xml) {
  AutoPtr<Document> doc = Parse(xml);
  if (doc.isNull() || !IsNamed(doc->documentElement(), "InitiateMultipartUploadResult")) {
    return NotThe("an InitiateMultipartUploadResult", xml);
  }
  std::string id = ChildText(doc->documentElement(), "UploadId");
  if (id.empty()) return Status::IOError("the object store started a multipart upload without id");
  return id;
}

Result<std::string> ParseCopyETag(std::string_view xml) {
  AutoPtr<Document> doc = Parse(xml);
  if (doc.isNull() || !(IsNamed(doc->documentElement(), "CopyObjectResult") ||
                        IsNamed(doc->documentElement(), "CopyPartResult"))) {
    return NotThe("a copy result", xml);
  }
  return ChildText(doc->documentElement(), "ETag");
}

Status ParseCompletion(std::string_view xml) {
  AutoPtr<Document> doc = Parse(xml);
  if (doc.isNull() || !IsNamed(doc->documentElement(), "CompleteMultipartUploadResult")) {
    return NotThe("a CompleteMultipartUploadResult", xml);
  }
  return Status::Ok();
}

Status ParseDeleteResult(std::string_view xml) {
  AutoPtr<Document> doc = Parse(xml);
  if (doc.isNull() || !IsNamed(doc->documentElement(), "DeleteResult")) {
    return NotThe("a DeleteResult", xml);
  }
  Status first;
  size_t failed = 0;
  EachChild(doc->documentElement(), "Error", [&](const Element& e) {
    if (failed++ == 0) {
      first = Status::IOError("could not delete " + ChildText(&e, "Key") + ": " +
                              ChildText(&e, "Code") + " " + ChildText(&e, "Message"));
    }
  });
  if (failed > 1) return Status::IOError(first.message() + " (and " + std::to_string(failed - 1) + " more)");
  return first;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace regfs::s3
