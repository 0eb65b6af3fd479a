#include "registry_test.h"

#include <cctype>
#include <filesystem>

namespace regfs::testing {

std::unique_ptr<RegistryServer> RegistryTest::server_;
std::string RegistryTest::startup_failure_;
int RegistryTest::repo_counter_ = 0;

void RegistryTest::StartSharedServer(ServerOptions options) {
  StopSharedServer();
  startup_failure_.clear();
  server_ = std::make_unique<RegistryServer>(std::move(options));
  ::testing::AssertionResult started = server_->Start();
  if (!started) {
    // Reported by every test's SetUp(): a failure here would not stop them.
    startup_failure_ = started.message();
    server_->KeepFiles();
  }
}

void RegistryTest::StopSharedServer() { server_.reset(); }

void RegistryTest::SetUp() {
  ASSERT_TRUE(server_ != nullptr && startup_failure_.empty())
      << "the registry server did not start: " << startup_failure_;
  log_offset_ = server_->LogSize();
}

void RegistryTest::TearDown() {
  // A startup failure already carried the log in its message.
  if (HasFailure() && server_ != nullptr && startup_failure_.empty()) {
    server_->KeepFiles();
    server_->PrintLog(log_offset_);
  }
}

std::string RegistryTest::NewRepo(std::string_view suffix) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto clean = [](std::string_view text) {
    std::string name;
    for (unsigned char c : text) {
      if (std::isalnum(c)) name += static_cast<char>(std::tolower(c));
    }
    return name.empty() ? std::string("x") : name;
  };
  std::string repo = clean(info->test_suite_name()) + "/" + clean(info->name()) + "-" +
                     std::to_string(++repo_counter_);
  if (!suffix.empty()) repo += "/" + clean(suffix);
  return repo;
}

std::set<std::string> RegistryTest::FilesOutsideStorage() {
  namespace fs = std::filesystem;
  std::set<std::string> files;
  fs::path root = fs::weakly_canonical(server().root_directory());
  for (auto it = fs::recursive_directory_iterator(server().dir());
       it != fs::recursive_directory_iterator(); ++it) {
    fs::path path = fs::weakly_canonical(it->path());
    if (path == root) {
      it.disable_recursion_pending();
      continue;
    }
    if (path.filename() == "server.log") continue;
    std::string entry = path.string();
    if (it->is_regular_file()) entry += " " + std::to_string(it->file_size());
    files.insert(entry);
  }
  return files;
}

}  // namespace regfs::testing
