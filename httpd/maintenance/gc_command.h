// regfs-httpd garbage-collect [--dry-run|-d] [--delete-untagged|-m] [--quiet|-q]
//                             [--grace DURATION] CONFIG
//
// registry:2's command, with the same flags and the same lines (each manifest and blob it
// marks, then what is eligible for deletion and a count), run online: regfs-httpd replicas
// and regfs-fused mounts keep serving the storage meanwhile (docs/gc.md). --grace (a regfs
// extension, default storage.maintenance.gc.grace or 1h) keeps anything written more
// recently; --grace 0s deletes what registry:2's would.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace regfs::httpd {

// `args` follow "garbage-collect". Returns the exit status: 0 done, 1 the collection failed
// (storage unusable, another collection running), 2 bad command line or configuration.
int GarbageCollectCommand(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err);

}  // namespace regfs::httpd
