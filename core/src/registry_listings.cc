// Listings: tags of a repository, the catalog of repositories, and referrers.
#include <algorithm>
#include <functional>

#include "layout.h"
#include "regfs/core/names.h"
#include "registry_impl.h"

namespace regfs {

namespace {

Status NameUnknown(const std::string& repo) {
  return Status::NotFound("repository " + repo + " is not known to this registry",
                          Status::Reason::kNameUnknown);
}

// Sorted entries strictly after `last`, at most `limit` of them.
Page Paginate(std::vector<std::string> all, const std::string& last, size_t limit) {
  std::sort(all.begin(), all.end());
  auto begin = last.empty() ? all.begin() : std::upper_bound(all.begin(), all.end(), last);
  Page page;
  size_t available = static_cast<size_t>(all.end() - begin);
  size_t take = std::min(available, limit);
  page.entries.assign(begin, begin + static_cast<std::ptrdiff_t>(take));
  page.more = available > take;
  return page;
}

}  // namespace

Result<Page> RegistryImpl::ListTags(const std::string& repo, const std::string& last,
                                    size_t limit) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  auto names = driver_.List(layout::TagsDir(repo));
  if (!names.ok()) {
    if (!names.status().IsNotFound()) return names.status();
    auto exists = RepositoryExists(repo);
    if (!exists.ok()) return exists.status();
    if (!*exists) return NameUnknown(repo);
    return Page{};
  }
  std::vector<std::string> tags;
  tags.reserve(names->size());
  for (std::string& name : *names) {
    // A tag folder whose current link is missing is a tag write cut off by a crash: not a tag.
    if (ValidateTag(name).ok() && Exists(layout::TagCurrentLink(repo, name))) {
      tags.push_back(std::move(name));
    }
  }
  return Paginate(std::move(tags), last, limit);
}

Status RegistryImpl::WalkRepositoryFolders(
    const std::function<void(const std::string&, const std::vector<std::string>&)>& visit) {
  // Folders whose name starts with "_" are a repository's own data, never a repository
  // (the name grammar forbids it), so the walk does not descend into them.
  std::function<Status(const std::string&, const std::string&)> walk =
      [&](const std::string& dir, const std::string& name) -> Status {
    auto children = driver_.List(dir);
    if (!children.ok()) return children.status().IsNotFound() ? Status::Ok() : children.status();
    if (!name.empty()) visit(name, *children);
    for (const std::string& child : *children) {
      if (child.empty() || child[0] == '_' || child[0] == '.') continue;
      auto info = driver_.Stat(dir + "/" + child);
      if (info.ok() && info->is_directory) {
        REGFS_RETURN_IF_ERROR(walk(dir + "/" + child, name.empty() ? child : name + "/" + child));
      }
    }
    return Status::Ok();
  };
  return walk(layout::RepositoriesRoot(), "");
}

Result<Page> RegistryImpl::ListRepositories(const std::string& last, size_t limit) {
  std::vector<std::string> repos;
  // A folder is a repository when it holds _manifests (registry:2's rule).
  REGFS_RETURN_IF_ERROR(
      WalkRepositoryFolders([&](const std::string& name, const std::vector<std::string>& children) {
        if (std::find(children.begin(), children.end(), "_manifests") != children.end()) {
          repos.push_back(name);
        }
      }));
  return Paginate(std::move(repos), last, limit);
}

Result<std::vector<Descriptor>> RegistryImpl::ListReferrers(const std::string& repo,
                                                            const Digest& subject,
                                                            const std::string& artifact_type) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  std::vector<Descriptor> out;
  for (const char* algorithm : {"sha256", "sha512"}) {
    auto hexes = driver_.List(layout::RevisionsDir(repo, algorithm));
    if (!hexes.ok()) {
      if (!hexes.status().IsNotFound()) return hexes.status();
      continue;
    }
    for (const std::string& hex : *hexes) {
      auto digest = Digest::Parse(std::string(algorithm) + ":" + hex);
      if (!digest.ok() || !Exists(layout::RevisionLink(repo, *digest))) continue;
      auto meta = LoadMetadata(*digest);
      if (!meta.ok() || !meta->subject || !(*meta->subject == subject)) continue;
      if (!artifact_type.empty() && meta->artifact_type != artifact_type) continue;
      Descriptor d;
      d.media_type = meta->media_type;
      d.digest = *digest;
      d.size = static_cast<int64_t>(meta->size);
      d.artifact_type = meta->artifact_type;
      d.annotations = meta->annotations;
      out.push_back(std::move(d));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Descriptor& a, const Descriptor& b) { return a.digest < b.digest; });
  return out;
}

}  // namespace regfs
