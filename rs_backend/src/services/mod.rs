//! The gRPC services: ActionsService (what a parent task's controller talks to), RunService
//! (what `flyte run` and the remote API talk to) and RunLogsService.

pub mod actions;
pub mod logs;
pub mod runs;
mod streams;

use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Messages a server stream may buffer before its producer waits for the client.
const STREAM_BUFFER: usize = 64;

type ServerStream<T> = ReceiverStream<Result<T, Status>>;

fn unsupported(method: &str) -> Status {
    Status::unimplemented(format!("{method} is not supported by the embedded backend"))
}
