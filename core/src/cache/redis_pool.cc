#include "cache/redis_pool.h"

#include <Poco/Exception.h>
#include <Poco/Redis/Exception.h>

namespace regfs {

namespace {

Poco::Timespan Span(std::chrono::milliseconds d) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(d.count()) * 1000);
}

}  // namespace

RedisPool::RedisPool(RedisCacheOptions options) : options_(std::move(options)) {}

std::string RedisPool::Describe() const {
  std::string addrs;
  for (const auto& a : options_.addrs) addrs += (addrs.empty() ? "" : ",") + a;
  return "redis " + addrs + " db " + std::to_string(options_.db);
}

Result<std::unique_ptr<Poco::Redis::Client>> RedisPool::Open() {
  std::string last_error = "no address";
  for (const auto& addr : options_.addrs) {
    try {
      auto client = std::make_unique<Poco::Redis::Client>();
      client->connect(addr, Span(options_.dial_timeout));
      client->setReceiveTimeout(Span(options_.read_timeout));
      if (!options_.password.empty()) {
        Poco::Redis::Array auth;
        auth << "AUTH";
        if (!options_.username.empty()) auth << options_.username;
        auth << options_.password;
        client->execute<std::string>(auth);
      }
      if (options_.db != 0) {
        Poco::Redis::Array select;
        select << "SELECT" << std::to_string(options_.db);
        client->execute<std::string>(select);
      }
      return client;
    } catch (const Poco::Exception& e) {
      // An AUTH failure's message is Redis's ("WRONGPASS ..."), which never echoes the
      // password; the address is safe to log.
      last_error = addr + ": " + e.displayText();
    }
  }
  return Status::Unavailable("cannot reach Redis (" + last_error + ")");
}

std::unique_ptr<Poco::Redis::Client> RedisPool::Borrow() {
  std::unique_lock lock(mu_);
  // Waiting longer than a dial would take is worse than failing over to storage.
  released_.wait_for(lock, options_.dial_timeout,
                      [&] { return !idle_.empty() || active_ < options_.max_active; });
  auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    Idle idle = std::move(idle_.back());
    idle_.pop_back();
    if (now - idle.since < options_.idle_timeout) {
      ++active_;
      return std::move(idle.client);
    }
  }
  if (active_ >= options_.max_active) return nullptr;
  ++active_;
  return std::make_unique<Poco::Redis::Client>();  // not connected: the caller opens it
}

void RedisPool::Return(std::unique_ptr<Poco::Redis::Client> client) {
  std::lock_guard lock(mu_);
  --active_;
  if (client && static_cast<int>(idle_.size()) < options_.max_idle) {
    idle_.push_back({std::move(client), std::chrono::steady_clock::now()});
  }
  released_.notify_one();
}

Status RedisPool::Run(const std::function<void(Poco::Redis::Client&)>& use) {
  auto client = Borrow();
  if (!client) {
    return Status::Unavailable("Redis: all " + std::to_string(options_.max_active) +
                               " connections (redis.pool.maxactive) are busy");
  }
  if (!client->isConnected()) {
    auto opened = Open();
    if (!opened.ok()) {
      Return(nullptr);
      return opened.status();
    }
    client = std::move(*opened);
  }
  try {
    use(*client);
  } catch (const Poco::Redis::RedisException& e) {
    // An error reply: the connection is fine.
    Return(std::move(client));
    return Status::Unavailable("Redis answered an error: " + e.displayText());
  } catch (const Poco::Exception& e) {
    Return(nullptr);
    return Status::Unavailable("Redis " + client->address().toString() + ": " + e.displayText());
  }
  Return(std::move(client));
  return Status::Ok();
}

}  // namespace regfs
