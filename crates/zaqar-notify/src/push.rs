//! Delivery to WebSocket connections of this node that subscribed to a source: the
//! notification is handed to the connection as a frame instead of being POSTed.

use serde_json::Value;

use crate::deliver::AttemptError;
use crate::Notifier;

impl Notifier {
    pub(crate) fn push_local(&self, conn_id: &str, payload: &Value) -> Result<(), AttemptError> {
        let mut frame = payload.clone();
        if let Some(o) = frame.as_object_mut() {
            o.remove("message_id");
        }
        if self.connections.push_local_frame(conn_id, frame) {
            Ok(())
        } else {
            Err(AttemptError {
                message: "the WebSocket connection is not reading".into(),
                retry: true,
            })
        }
    }
}
