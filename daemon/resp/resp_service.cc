#include "resp/resp_service.h"

#include "resp/resp_codec.h"
#include "resp/resp_config.h"

namespace kvd::daemon {

Result<std::unique_ptr<RespService>> RespService::Create(uv_loop_t* loop, const Config& config,
                                                          Dispatcher* dispatcher, DispatchHost* host,
                                                          ServerCounters* counters, uint64_t* next_conn_id,
                                                          FrontEnd::Options options) {
  KVD_RETURN_IF_ERROR(CheckRespConfig(config));
  KVD_ASSIGN_OR_RETURN(std::string password, LoadRespPassword(config));
  RespLimits limits;
  limits.max_key_bytes = config.max_key_bytes;
  limits.max_value_bytes = config.max_value_bytes;
  limits.max_command_bytes = std::max<uint64_t>(config.max_frame_bytes, config.max_value_bytes + 2 * config.max_key_bytes);
  std::unique_ptr<RespService> svc(new RespService(dispatcher, host));
  svc->front_end_ = std::make_unique<FrontEnd>(loop, std::make_unique<RespProtocol>(limits, std::move(password)),
                                               &svc->handler_, counters, next_conn_id, options);
  return svc;
}

Status RespService::Listen(const Config& config) {
  if (!config.resp_socket.empty()) {
    // Same permission bits as the native socket: the same users may write.
    KVD_RETURN_IF_ERROR(front_end_->ListenUnix(config.resp_socket, config.socket_mode));
  }
  if (!config.resp_listen.empty()) {
    KVD_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(config.resp_listen, /*allow_port0=*/true));
    KVD_RETURN_IF_ERROR(front_end_->ListenTcp(hp.host, hp.port));
  }
  return Status::Ok();
}

}  // namespace kvd::daemon
