#include "registry_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#ifndef REGFS_HTTPD_PATH
#define REGFS_HTTPD_PATH "regfs-httpd"
#endif

namespace regfs::testing {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/regfs-httpd-test-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  }
  return buffer.data();
}

uint16_t PortOfAddr(const std::string& addr) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(addr.substr(colon + 1)));
}

}  // namespace

RegistryServer::RegistryServer(ServerOptions options) : options_(std::move(options)) {
  dir_ = MakeTempDir();
  config_path_ = dir_ + "/config.yml";
  log_path_ = dir_ + "/server.log";
}

RegistryServer::~RegistryServer() {
  Stop();
  if (::testing::Test::HasFailure()) {
    keep_files_ = true;
    if (!log_printed_) PrintLog();
  }
  if (keep_files_) {
    std::cerr << "[regfs-test] kept server files in " << dir_ << "\n";
    return;
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string RegistryServer::BinaryPath() {
  const char* from_env = std::getenv("REGFS_HTTPD");
  std::string path = from_env != nullptr && *from_env != '\0' ? from_env : REGFS_HTTPD_PATH;
  if (path.find('/') == std::string::npos) return path;
  return fs::absolute(path).lexically_normal().string();
}

uint16_t RegistryServer::FindFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int error = errno;
    close(fd);
    throw std::runtime_error("bind/getsockname: " + std::string(std::strerror(error)));
  }
  close(fd);
  return ntohs(address.sin_port);
}

std::string RegistryServer::StorageDriverYaml() const {
  auto s3 = ReadObjectStoreEnv();
  if (!s3 || !options_.root_directory.empty()) {
    return "filesystem: {rootdirectory: \"" + root_directory_ + "\"}";
  }
  // One bucket for every server; each keeps its own key prefix, named after its folder.
  return "s3: {regionendpoint: \"" + s3->at("RGW_ENDPOINT") + "\", region: \"" +
         s3->at("RGW_REGION") + "\", bucket: " + std::string(kTestBucket) + ", accesskey: \"" +
         s3->at("RGW_ACCESS_KEY") + "\", secretkey: \"" + s3->at("RGW_SECRET_KEY") +
         "\", rootdirectory: \"" + fs::path(dir_).filename().string() +
         "\"}, redirect: {disable: " + (options_.redirect ? "false" : "true") + "}";
}

std::string RegistryServer::ConfigText() const {
  std::ostringstream yaml;
  yaml << "version: 0.1\n"
       << "log: {level: info}\n"
       << "storage: {" << StorageDriverYaml() << ", "
       << "delete: {enabled: " << (options_.delete_enabled ? "true" : "false") << "}";
  if (!options_.storage_extra.empty()) yaml << ", " << options_.storage_extra;
  yaml << "}\n"
       << "http: {addr: \"" << addr_ << "\"";
  if (!options_.http_extra.empty()) yaml << ", " << options_.http_extra;
  yaml << "}\n";
  if (!options_.top_level_extra.empty()) yaml << options_.top_level_extra << "\n";
  return yaml.str();
}

void RegistryServer::WriteConfig() {
  root_directory_ = options_.root_directory.empty() ? dir_ + "/storage" : options_.root_directory;
  if (options_.addr.empty()) {
    port_ = FindFreePort();
    addr_ = "127.0.0.1:" + std::to_string(port_);
  } else {
    addr_ = options_.addr;
    port_ = PortOfAddr(addr_);
  }
  std::ofstream config(config_path_, std::ios::trunc);
  config << ConfigText();
  if (!config) throw std::runtime_error("cannot write " + config_path_);
}

void RegistryServer::Launch() {
  if (pid_ > 0) throw std::logic_error("server already launched");
  WriteConfig();
  exit_code_.reset();

  // Everything the child needs is prepared before fork(): after fork() in a
  // possibly multi-threaded parent only async-signal-safe calls are allowed.
  std::string binary = BinaryPath();
  std::vector<std::string> args = {binary, "serve", config_path_};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path_);
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  }
  if (pid == 0) {
    // Do not outlive a crashed or killed test binary.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    // The test may hold sockets (even a listener in the port-taken test);
    // none of them may leak into the server.
    close_range(3, ~0U, 0);
    if (chdir(dir_.c_str()) != 0) _exit(125);
    execvp(binary.c_str(), argv.data());
    const char prefix[] = "[regfs-test] cannot execute ";
    (void)!write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
    (void)!write(STDERR_FILENO, binary.c_str(), binary.size());
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;
}

::testing::AssertionResult RegistryServer::Start() {
  try {
    Launch();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "cannot launch server: " << e.what();
  }
  HttpClient probe("127.0.0.1", port_, milliseconds(1000));
  auto deadline = Clock::now() + std::chrono::seconds(10);
  std::string last_error;
  while (Clock::now() < deadline) {
    if (!IsRunning()) {
      log_printed_ = true;  // the message below carries it
      return ::testing::AssertionFailure() << BinaryPath() << " exited during startup with code "
                                           << exit_code_.value_or(-1) << "\nconfig:\n"
                                           << ConfigText() << "log:\n"
                                           << ReadLog();
    }
    HttpResponse response = probe.Get("/v2/");
    if (response.status != 0) return ::testing::AssertionSuccess();
    last_error = response.error;
    std::this_thread::sleep_for(milliseconds(50));
  }
  log_printed_ = true;
  return ::testing::AssertionFailure() << BinaryPath() << " did not answer GET /v2/ on port "
                                       << port_ << " within 10 s (" << last_error << ")\nlog:\n"
                                       << ReadLog();
}

::testing::AssertionResult RegistryServer::Restart(ServerOptions options) {
  Stop();
  // The storage must survive the restart, whatever the new options say (a bucket prefix is
  // named after the server's folder, which stays).
  const bool on_object_store = ReadObjectStoreEnv().has_value() && options_.root_directory.empty();
  if (options.root_directory.empty() && !on_object_store) options.root_directory = root_directory_;
  options_ = std::move(options);
  return Start();
}

bool RegistryServer::Reap(bool block) {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t result;
  do {
    result = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (result < 0 && errno == EINTR);
  if (result == 0) return false;
  if (result == pid_) {
    exit_code_ = WIFEXITED(status)     ? WEXITSTATUS(status)
                 : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                       : -1;
  }
  pid_ = -1;
  return true;
}

bool RegistryServer::IsRunning() { return !Reap(false); }

std::optional<int> RegistryServer::WaitForExit(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (IsRunning()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return exit_code_;
}

void RegistryServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (WaitForExit(std::chrono::seconds(10))) return;
  std::cerr << "[regfs-test] server pid " << pid_ << " ignored SIGTERM for 10 s; sending SIGKILL\n";
  kill(pid_, SIGKILL);
  Reap(true);
}

void RegistryServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Reap(true);
}

std::string RegistryServer::ReadLog() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

size_t RegistryServer::LogSize() const {
  std::error_code error;
  auto size = fs::file_size(log_path_, error);
  return error ? 0 : static_cast<size_t>(size);
}

bool RegistryServer::WaitForLog(std::string_view needle, milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  do {
    if (ReadLog().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(milliseconds(50));
  } while (Clock::now() < deadline);
  return ReadLog().find(needle) != std::string::npos;
}

void RegistryServer::PrintLog(size_t from_offset) const {
  log_printed_ = true;
  std::string log = ReadLog();
  if (from_offset > log.size()) from_offset = 0;
  log = log.substr(from_offset);
  // Keep the tail: the end of the log is what explains a failure.
  constexpr size_t kMaxPrinted = 64 * 1024;
  if (log.size() > kMaxPrinted) log = "...\n" + log.substr(log.size() - kMaxPrinted);
  std::cerr << "----- server log (" << log_path_ << ") -----\n"
            << log << "\n----- end of server log -----\n";
}

}  // namespace regfs::testing
