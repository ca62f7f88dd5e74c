#include "load_driver.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "keyspace.h"
#include "kvd/fd.h"
#include "kvd/protocol.h"
#include "kvd/types.h"
#include "request_template.h"
#include "resp_bench_codec.h"

namespace kvctl {
namespace {

namespace proto = kvd::proto;

constexpr size_t kReadChunk = 64 * 1024;
constexpr uint64_t kDrainTimeoutNs = 30'000'000'000ull;  // after a stop, wait this long for replies

uint64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// splitmix64: cheap, and good enough to spread keys and the PUT:GET mix.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) without a division (Lemire's multiply-shift).
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64); }
};

struct InFlight {
  uint64_t sent_ns;
  bool is_get;
};

struct Conn {
  kvd::Fd fd;
  std::string out;  // encoded requests not yet written, from out_pos
  size_t out_pos = 0;
  std::vector<std::byte> in;  // received bytes in [in_begin, in_end)
  size_t in_begin = 0;
  size_t in_end = 0;
  std::vector<InFlight> ring;  // `pipeline` slots; the oldest at ring_head
  size_t ring_head = 0;
  size_t in_flight = 0;
  uint64_t next_id = 1;
  uint64_t expect_id = 1;
  uint64_t remaining = 0;  // requests still to issue (unless by duration)
  uint64_t next_key = 0;   // prefill: next key, advancing by key_step
  uint64_t key_step = 1;
  Rng rng{0};
  std::string key;  // keys_.size() bytes, rewritten in place per request
  bool dead = false;
  bool watching_out = false;
};

kvd::Status SetNonBlocking(const kvd::Fd& fd) {
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return kvd::Status::FromErrno(errno, "fcntl O_NONBLOCK");
  }
  return kvd::Status::Ok();
}

// HOST:PORT (a RESP TCP listener; [v6]:port too), connected with Nagle off
// so that a lone pipelined request is not held back.
kvd::Result<kvd::Fd> ConnectTcp(const std::string& endpoint) {
  const size_t colon = endpoint.rfind(':');
  std::string host = endpoint.substr(0, colon);
  const std::string port = endpoint.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return kvd::Status::InvalidArgument("resolve " + endpoint + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  kvd::Status last = kvd::Status::InvalidArgument("no address for " + endpoint);
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    kvd::Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) {
      last = kvd::Status::FromErrno(errno, "socket");
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      last = kvd::Status::FromErrno(errno, "connect " + endpoint);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    KVD_RETURN_IF_ERROR(SetNonBlocking(fd));
    return fd;
  }
  return last;
}

// A path (anything with a '/' or without a ':') is a Unix socket.
bool IsTcpEndpoint(const std::string& endpoint) {
  return endpoint.find('/') == std::string::npos && endpoint.find(':') != std::string::npos;
}

kvd::Result<kvd::Fd> ConnectNonBlocking(const std::string& path, bool allow_tcp) {
  if (allow_tcp && IsTcpEndpoint(path)) return ConnectTcp(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return kvd::Status::InvalidArgument("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  kvd::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return kvd::Status::FromErrno(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return kvd::Status::FromErrno(errno, "connect " + path);
  }
  KVD_RETURN_IF_ERROR(SetNonBlocking(fd));
  return fd;
}

class Worker {
 public:
  // duration_ns: a timed run's length, counted from this worker's first
  // request (0: a counted run). Not from when the workers were created:
  // starting threads on a busy machine can take longer than a short run.
  // max_acks: this worker's share of LoadSpec::max_ack_samples.
  Worker(const LoadSpec& spec, std::string_view value, const std::atomic<bool>* stop, uint64_t duration_ns,
         uint64_t max_acks)
      : spec_(spec),
        stop_(stop),
        duration_ns_(duration_ns),
        keys_(spec.key_prefix),
        put_(RequestTemplate::Put(keys_.Key(0), value, spec.durable_flag ? kvd::proto::kFlagDurable : 0)),
        get_(RequestTemplate::Get(keys_.Key(0))),
        resp_set_(RespRequestTemplate::Set(keys_.Key(0), value)),
        resp_get_(RespRequestTemplate::Get(keys_.Key(0))),
        max_acks_(max_acks) {
    // Grows past this only in long runs (amortized; the bound caps it).
    result_.acks.reserve(static_cast<size_t>(std::min<uint64_t>(max_acks_, 1 << 16)));
  }

  void Add(std::unique_ptr<Conn> c) { conns_.push_back(std::move(c)); }
  void Run();

  LoadResult& result() { return result_; }
  uint64_t first_send_ns() const { return first_send_ns_; }
  uint64_t last_reply_ns() const { return last_reply_ns_; }
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> errors{0};

 private:
  bool CanIssue(const Conn& c) const { return !c.dead && !stopping_ && (by_duration() || c.remaining > 0); }
  bool by_duration() const { return spec_.requests == 0 && !spec_.prefill; }
  void Fill(Conn& c, uint64_t now);
  void Flush(Conn& c);
  void OnReadable(Conn& c);
  // Consume the complete replies in c.in; false when the connection was killed.
  bool TakeNativeReplies(Conn& c, uint64_t now);
  bool TakeRespReplies(Conn& c, uint64_t now);
  // Pops the oldest request in flight and records its latency.
  InFlight Complete(Conn& c, uint64_t now);
  void Kill(Conn& c, const std::string& why);
  void Watch(Conn& c, bool want_out);

  const LoadSpec& spec_;
  const std::atomic<bool>* stop_;
  const uint64_t duration_ns_;
  const BenchKeys keys_;
  const RequestTemplate put_;
  const RequestTemplate get_;
  const RespRequestTemplate resp_set_;
  const RespRequestTemplate resp_get_;
  const uint64_t max_acks_;
  std::vector<std::unique_ptr<Conn>> conns_;
  kvd::Fd epoll_;
  bool stopping_ = false;
  LoadResult result_;
  uint64_t first_send_ns_ = 0;
  uint64_t last_reply_ns_ = 0;
};

void Worker::Kill(Conn& c, const std::string& why) {
  if (c.dead) return;
  result_.errors += c.in_flight;
  c.in_flight = 0;
  c.dead = true;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
  c.fd.reset();
  if (result_.first_error.empty()) result_.first_error = why;
}

void Worker::Watch(Conn& c, bool want_out) {
  if (c.dead || c.watching_out == want_out) return;
  epoll_event ev{};
  ev.events = want_out ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
  c.watching_out = want_out;
}

void Worker::Fill(Conn& c, uint64_t now) {
  while (c.in_flight < c.ring.size() && CanIssue(c)) {
    bool is_get = false;
    if (spec_.prefill) {
      keys_.Format(c.next_key, c.key.data());
      c.next_key += c.key_step;
    } else {
      keys_.Format(c.rng.Below(spec_.key_space), c.key.data());
      is_get = spec_.get_weight > 0 && c.rng.Below(uint64_t{spec_.put_weight} + spec_.get_weight) >= spec_.put_weight;
    }
    if (spec_.resp) {
      (is_get ? resp_get_ : resp_set_).AppendTo(&c.out, c.key.data());
    } else {
      (is_get ? get_ : put_).AppendTo(&c.out, c.next_id++, c.key.data());
    }
    c.ring[(c.ring_head + c.in_flight) % c.ring.size()] = InFlight{now, is_get};
    ++c.in_flight;
    if (!by_duration()) --c.remaining;
    if (first_send_ns_ == 0) first_send_ns_ = now;
  }
}

void Worker::Flush(Conn& c) {
  while (c.out_pos < c.out.size()) {
    const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Watch(c, true);
      return;
    } else {
      Kill(c, std::string("send: ") + std::strerror(errno));
      return;
    }
  }
  c.out.clear();  // keeps its capacity: no allocation on the next requests
  c.out_pos = 0;
  Watch(c, false);
}

void Worker::OnReadable(Conn& c) {
  if (c.in.size() - c.in_end < kReadChunk / 4) {
    if (c.in_begin > 0) {
      std::memmove(c.in.data(), c.in.data() + c.in_begin, c.in_end - c.in_begin);
      c.in_end -= c.in_begin;
      c.in_begin = 0;
    }
    if (c.in.size() - c.in_end < kReadChunk / 4) c.in.resize(c.in.size() * 2);  // a reply larger than the buffer
  }
  const ssize_t n = ::recv(c.fd.get(), c.in.data() + c.in_end, c.in.size() - c.in_end, 0);
  if (n == 0) return Kill(c, "server closed the connection");
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    return Kill(c, std::string("recv: ") + std::strerror(errno));
  }
  c.in_end += static_cast<size_t>(n);
  const uint64_t now = NowNs();
  if (!(spec_.resp ? TakeRespReplies(c, now) : TakeNativeReplies(c, now))) return;
  if (c.in_begin == c.in_end) c.in_begin = c.in_end = 0;
  last_reply_ns_ = now;
  Fill(c, now);
  Flush(c);
}

InFlight Worker::Complete(Conn& c, uint64_t now) {
  const InFlight sent = c.ring[c.ring_head];
  c.ring_head = (c.ring_head + 1) % c.ring.size();
  --c.in_flight;
  result_.latency_us.Record((now - sent.sent_ns) / 1000);
  ++result_.requests;
  ++(sent.is_get ? result_.gets : result_.puts);
  return sent;
}

bool Worker::TakeNativeReplies(Conn& c, uint64_t now) {
  while (c.in_begin < c.in_end) {
    const auto avail = std::span<const std::byte>(c.in.data() + c.in_begin, c.in_end - c.in_begin);
    auto split = proto::SplitFrame(avail, proto::kDefaultMaxFrameBytes, proto::kReplyHeaderBytes);
    if (!split.has_value()) {
      Kill(c, "bad reply frame: " + split.error().ToString());
      return false;
    }
    if (!split->has_value()) break;
    const auto frame = avail.first(**split);
    auto header = proto::DecodeReplyHeader(frame);
    if (!header.has_value()) {
      Kill(c, "bad reply: " + header.error().ToString());
      return false;
    }
    if (c.in_flight == 0 || header->request_id != c.expect_id) {
      Kill(c, "reply for request " + std::to_string(header->request_id) + ", expected " + std::to_string(c.expect_id));
      return false;
    }
    const InFlight sent = Complete(c, now);
    ++c.expect_id;
    c.in_begin += frame.size();
    if (max_acks_ > 0 && header->status == kvd::Code::kOk && !sent.is_get) {
      if (result_.acks.size() < max_acks_) {
        result_.acks.push_back(AckSample{header->lsn, now});
      } else {
        ++result_.acks_dropped;
      }
    }
    if (header->status == kvd::Code::kNotFound && sent.is_get) {
      ++result_.get_misses;
    } else if (header->status == kvd::Code::kOk && !sent.is_get && header->lsn > header->durable_lsn) {
      result_.max_ack_lag = std::max(result_.max_ack_lag, header->lsn - header->durable_lsn);
    } else if (header->status != kvd::Code::kOk) {
      ++result_.errors;
      if (result_.first_error.empty()) {
        const auto payload = proto::ReplyPayload(frame);
        result_.first_error = std::string(kvd::CodeName(header->status)) + ": " +
                              std::string(reinterpret_cast<const char*>(payload.data()), payload.size());
      }
    }
  }
  return true;
}

// What counts as success mirrors the native mode: SET wants +OK, GET a bulk
// value (or a null: a miss); an -error reply is a failed request, counted
// and reported, and the connection goes on (RESP keeps the stream in sync
// after an error reply).
bool Worker::TakeRespReplies(Conn& c, uint64_t now) {
  const size_t max_bulk = kvd::kMaxValueBytes;  // keys may hold values of an earlier run
  while (c.in_begin < c.in_end) {
    const std::string_view avail(reinterpret_cast<const char*>(c.in.data()) + c.in_begin, c.in_end - c.in_begin);
    const RespReply reply = DecodeRespReply(avail, max_bulk);
    if (reply.kind == RespReply::kNeedMore) break;
    if (reply.kind == RespReply::kBad) {
      Kill(c, "bad RESP reply: " + std::string(reply.text));
      return false;
    }
    if (c.in_flight == 0) {
      Kill(c, "RESP reply with no request in flight");
      return false;
    }
    const InFlight sent = Complete(c, now);
    c.in_begin += reply.consumed;
    const bool ok = sent.is_get ? (reply.kind == RespReply::kBulk || reply.kind == RespReply::kNull)
                                : (reply.kind == RespReply::kSimple && reply.text == "OK");
    if (ok) {
      if (reply.kind == RespReply::kNull) ++result_.get_misses;
      continue;
    }
    ++result_.errors;
    if (result_.first_error.empty()) {
      result_.first_error = std::string(sent.is_get ? "GET" : "SET") + ": " +
                            (reply.kind == RespReply::kError ? "-" : "unexpected reply ") + std::string(reply.text);
    }
  }
  return true;
}

void Worker::Run() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) {
    for (auto& c : conns_) Kill(*c, std::string("epoll_create1: ") + std::strerror(errno));
    return;
  }
  for (auto& c : conns_) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c->fd.get(), &ev) != 0) {
      Kill(*c, std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }
  const uint64_t start = NowNs();
  for (auto& c : conns_) {
    Fill(*c, start);
    if (!c->dead) Flush(*c);
  }
  uint64_t stop_ns = 0;
  std::vector<epoll_event> events(std::max<size_t>(conns_.size(), 1));
  while (true) {
    const uint64_t now = NowNs();
    if (!stopping_ && ((stop_ && stop_->load(std::memory_order_relaxed)) || (duration_ns_ && first_send_ns_ && now >= first_send_ns_ + duration_ns_))) {
      stopping_ = true;
      stop_ns = now;
    }
    if (stopping_ && now - stop_ns > kDrainTimeoutNs) {
      for (auto& c : conns_) Kill(*c, "no reply within 30 s after the run ended");
    }
    bool busy = false;
    for (auto& c : conns_) busy = busy || (!c->dead && (c->in_flight > 0 || CanIssue(*c)));
    if (!busy) break;
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      Conn& c = *static_cast<Conn*>(events[i].data.ptr);
      if (!c.dead && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) OnReadable(c);
      if (!c.dead && (events[i].events & EPOLLOUT)) Flush(c);
    }
    completed.store(result_.requests, std::memory_order_relaxed);
    errors.store(result_.errors, std::memory_order_relaxed);
  }
  completed.store(result_.requests, std::memory_order_relaxed);
  errors.store(result_.errors, std::memory_order_relaxed);
}

}  // namespace

kvd::Result<LoadResult> RunLoad(const std::string& endpoint, const LoadSpec& spec,
                                const std::atomic<bool>* stop,
                                const std::function<void(const LoadProgress&)>& on_progress) {
  if (spec.clients == 0 || spec.pipeline == 0 || spec.key_space == 0 || spec.key_space > kMaxKeySpace) {
    return kvd::Status::InvalidArgument("clients, pipeline and key space must be positive (key space < 10^12)");
  }
  if (!spec.prefill && spec.requests == 0 && spec.duration.count() <= 0) {
    return kvd::Status::InvalidArgument("need a request count or a duration");
  }
  const std::string value = BenchValue(spec.value_size);
  const uint32_t threads = std::clamp<uint32_t>(spec.threads, 1, spec.clients);
  std::vector<std::unique_ptr<Conn>> conns;
  // Each connection starts at a random point of splitmix64's sequence
  // (seeding with seed + j would give every connection the same keys,
  // shifted by one).
  Rng seeder{spec.seed};
  for (uint32_t j = 0; j < spec.clients; ++j) {
    auto fd = ConnectNonBlocking(endpoint, spec.resp);
    if (!fd.has_value()) return fd.error().Annotate("client " + std::to_string(j));
    auto c = std::make_unique<Conn>();
    c->fd = std::move(*fd);
    c->ring.resize(spec.pipeline);
    c->in.resize(kReadChunk);
    c->key.resize(BenchKeys(spec.key_prefix).size());
    c->out.reserve(static_cast<size_t>(spec.pipeline) * (64 + spec.value_size));
    c->rng.state = seeder.Next();
    if (spec.prefill) {
      c->next_key = j;
      c->key_step = spec.clients;
      c->remaining = spec.key_space > j ? (spec.key_space - j + spec.clients - 1) / spec.clients : 0;
    } else if (spec.requests > 0) {
      c->remaining = spec.requests / spec.clients + (j < spec.requests % spec.clients ? 1 : 0);
    }
    conns.push_back(std::move(c));
  }

  // The clock starts once every client is connected.
  const uint64_t start_ns = NowNs();
  const uint64_t duration_ns =
      spec.requests == 0 && !spec.prefill ? static_cast<uint64_t>(spec.duration.count()) : 0;
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t t = 0; t < threads; ++t) {
    const uint64_t max_acks = spec.max_ack_samples / threads + (t < spec.max_ack_samples % threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(spec, value, stop, duration_ns, max_acks));
  }
  for (uint32_t j = 0; j < spec.clients; ++j) workers[j % threads]->Add(std::move(conns[j]));

  std::mutex mu;
  std::condition_variable cv;
  uint32_t running = threads;
  std::vector<std::thread> pool;
  for (auto& w : workers) {
    pool.emplace_back([&, worker = w.get()] {
      worker->Run();
      std::lock_guard<std::mutex> lock(mu);
      --running;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::seconds(1), [&] { return running == 0; })) {
      if (!on_progress) continue;
      LoadProgress p;
      for (auto& w : workers) {
        p.completed += w->completed.load(std::memory_order_relaxed);
        p.errors += w->errors.load(std::memory_order_relaxed);
      }
      p.elapsed_s = static_cast<double>(NowNs() - start_ns) / 1e9;
      lock.unlock();
      on_progress(p);
      lock.lock();
    }
  }
  for (auto& t : pool) t.join();

  LoadResult total;
  uint64_t first = 0;
  uint64_t last = 0;
  for (auto& w : workers) {
    LoadResult& r = w->result();
    total.requests += r.requests;
    total.errors += r.errors;
    total.puts += r.puts;
    total.gets += r.gets;
    total.get_misses += r.get_misses;
    total.max_ack_lag = std::max(total.max_ack_lag, r.max_ack_lag);
    total.acks.insert(total.acks.end(), r.acks.begin(), r.acks.end());
    total.acks_dropped += r.acks_dropped;
    total.latency_us.Merge(r.latency_us);
    if (total.first_error.empty()) total.first_error = r.first_error;
    if (w->first_send_ns() && (first == 0 || w->first_send_ns() < first)) first = w->first_send_ns();
    last = std::max(last, w->last_reply_ns());
  }
  total.seconds = first && last > first ? static_cast<double>(last - first) / 1e9 : 0.0;
  return total;
}

}  // namespace kvctl
