//! The JSON messages of `/live/{room}` and of the REST API (`proto/PROTOCOL.md`), and the error
//! body every refusal shares.
//!
//! These types are the contract: `proto/schema/*.schema.json` are generated from them (see
//! [`schemas`]) and the tests validate every message the server sends against those files.

use bytes::Bytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::okr::{Command, CommandError, ErrorCode, Event, Millis, OkrSet};

/// Client → server on `/live`: a command with the client's `id`, echoed in the `ack` or
/// `error` that answers it. `{"id": "c1", "type": "checkin.create", ...}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ClientCommand {
    /// Chosen by the client (1–64 characters); echoed in the answer.
    pub id: String,
    #[serde(flatten)]
    pub command: Command,
}

/// Server → client messages other than events.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// The whole OKR set, on join (or on a resume from too far back).
    Snapshot {
        room: String,
        /// The room's sequence number the snapshot is at: events that follow have higher ones.
        seq: u64,
        okr: Box<OkrSet>,
        /// Who is here now.
        present: Vec<Presence>,
    },
    /// Answer to `?since=SEQ`: the events after `from` follow, up to `seq`. Presence is not
    /// replayed: `present` is who is here now.
    Resumed {
        from: u64,
        seq: u64,
        present: Vec<Presence>,
    },
    /// A command was applied (and is durable): its changes are at `seq`.
    Ack {
        id: String,
        seq: u64,
        /// The id of what a `*.create` command made.
        #[serde(skip_serializing_if = "Option::is_none")]
        created_id: Option<String>,
    },
    /// The first message of `/live/~inbox`: whose inbox, its sequence number now, and
    /// whether every mention after the asked `since` follows (false: some were dropped, or
    /// made before this server started).
    Inbox {
        user: String,
        seq: u64,
        complete: bool,
    },
    /// `/live/~inbox`: a mention of the inbox's user, made in `room`; `seq` is the inbox's
    /// (resume with `?since=` it), `mention` the room's `mention` event.
    #[serde(rename = "inbox.mention")]
    InboxMention {
        seq: u64,
        room: String,
        mention: Box<EventMessage>,
    },
    /// A command (or a message) was refused; nothing changed.
    Error {
        /// The command's `id`, when it could be read.
        id: Option<String>,
        #[serde(flatten)]
        error: ErrorBody,
    },
    /// Who is here now, replacing what the client knew: sent instead of one `presence` per
    /// change when more changed at once than a room sends one by one (a burst of joins, or a
    /// flood of awareness states): the changes since the last `presence` were held back and
    /// this is where they led.
    Present {
        /// The room's sequence number when it was sent (presence does not advance it).
        seq: u64,
        present: Vec<Presence>,
    },
    /// Someone arrived or left (from `/live` connections and from Yjs awareness).
    Presence {
        /// The room's sequence number when it happened (presence does not advance it).
        seq: u64,
        state: PresenceState,
        #[serde(flatten)]
        who: Presence,
    },
}

/// An error: a stable code, a message for humans and the offending field.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub code: WireErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// A finer, stable reason for `unauthenticated` and `forbidden` (`expired`,
    /// `bad_signature`, `missing_token`, `other_org`, `origin`, `role`, …) and for `unavailable`
    /// (`store_corrupt`: the room's stored data failed its integrity check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every error code a client can get: the command's own ([`ErrorCode`]) or the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WireErrorCode {
    Command(ErrorCode),
    Protocol(ProtocolErrorCode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolErrorCode {
    /// Not JSON, or not a known command, or a field of the wrong type.
    BadRequest,
    /// No valid token (missing, bad signature, expired, …: `reason` says which); on an open
    /// server, no or an invalid `?user=`.
    Unauthenticated,
    /// The room id is not `{org}.{team}.{cycle}`.
    InvalidRoom,
    /// Not found (a KR's history for an unknown KR).
    NotFound,
    /// The principal may not do this: its role in the room, another org, a personal room of
    /// someone else, a foreign `Origin` (`reason` says which).
    Forbidden,
    /// The store cannot take more writes right now (or the room could not be loaded, or is
    /// closing); retry later. With `reason: store_corrupt` the room's stored data failed its
    /// integrity check: it is not served until it is restored.
    Unavailable,
    /// Over a limit of how much one client may ask for at once (connections of one user,
    /// new rooms a minute): `reason` says which; retry later.
    RateLimited,
    /// The change would take the room's document past its size limit; nothing changed.
    DocTooLarge,
}

impl ErrorBody {
    pub fn protocol(code: ProtocolErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code: WireErrorCode::Protocol(code),
            message: message.into(),
            field: None,
            reason: None,
        }
    }

    /// The same error with a finer reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

impl From<CommandError> for ErrorBody {
    fn from(e: CommandError) -> Self {
        ErrorBody {
            code: WireErrorCode::Command(e.code),
            message: e.message,
            field: e.field,
            reason: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Joined,
    Left,
}

/// One presence: a user connected through `/live`, or a Yjs client's awareness state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Presence {
    /// The user id (`/live`), or the awareness state's `user.id` / `user.name` (Yjs).
    pub user: String,
    pub via: Via,
    /// The Yjs client id, for awareness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Live,
    Sync,
}

/// An OKR event with its place in the room's history. `{"seq": 7, "by": "ann", "at": …,
/// "type": "checkin.created", "checkin": {…}}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventMessage {
    /// The room's sequence number of the update that caused it; several events of one update
    /// share it. Events of time passing (a KR becoming overdue, a reminder) happen between
    /// updates and carry the room's current sequence number, with `by` null.
    pub seq: u64,
    /// Who made the change, when known (the connection's or the command's user).
    pub by: Option<String>,
    pub at: Millis,
    #[serde(flatten)]
    pub event: Event,
}

/// Everything the server sends on `/live`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ServerMessage {
    Control(Control),
    Event(Box<EventMessage>),
}

/// REST: the answer to `GET /api/rooms/{room}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoomView {
    pub room: String,
    pub seq: u64,
    pub okr: OkrSet,
}

/// REST: the answer to a command.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CommandAccepted {
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_id: Option<String>,
}

/// REST: every error body.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// REST: a KR's check-ins as a time series.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KrHistory {
    pub room: String,
    pub key_result: String,
    pub points: Vec<crate::okr::HistoryPoint>,
}

/// REST `GET /api/rooms`: the rooms the caller may read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomEntry>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RoomEntry {
    pub room: String,
    pub org: String,
    pub team: String,
    pub cycle: String,
    /// A personal room (`{org}.~{user}.{cycle}`).
    pub personal: bool,
    /// The caller's role in it (`null`: none; it reads the room's public objectives).
    pub role: Option<crate::identity::Role>,
}

/// A server message as one JSON text frame.
/// The `snapshot` message with the set already encoded (`okr`): exactly what
/// [`Control::Snapshot`] encodes to, without serialising the set again.
pub fn encode_snapshot(room: &str, seq: u64, okr: &RawValue, present: &[Presence]) -> Bytes {
    #[derive(Serialize)]
    struct Snapshot<'a> {
        r#type: &'static str,
        room: &'a str,
        seq: u64,
        okr: &'a RawValue,
        present: &'a [Presence],
    }
    let message = Snapshot {
        r#type: "snapshot",
        room,
        seq,
        okr,
        present,
    };
    Bytes::from(serde_json::to_vec(&message).unwrap_or_default())
}

/// The REST [`RoomView`] with the set already encoded.
pub fn encode_room_view(room: &str, seq: u64, okr: &RawValue) -> Bytes {
    #[derive(Serialize)]
    struct View<'a> {
        room: &'a str,
        seq: u64,
        okr: &'a RawValue,
    }
    Bytes::from(serde_json::to_vec(&View { room, seq, okr }).unwrap_or_default())
}

pub fn encode(message: &ServerMessage) -> Bytes {
    // Serialising these types cannot fail: no maps with non-string keys, no custom impls.
    Bytes::from(serde_json::to_vec(message).unwrap_or_default())
}

/// The JSON Schemas of every message, by file name under `proto/schema/`.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn of<T: JsonSchema>() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(T)).expect("a schema is JSON")
    }
    vec![
        ("client-command.schema.json", of::<ClientCommand>()),
        ("command.schema.json", of::<Command>()),
        ("server-message.schema.json", of::<ServerMessage>()),
        ("room-view.schema.json", of::<RoomView>()),
        ("command-accepted.schema.json", of::<CommandAccepted>()),
        ("error-response.schema.json", of::<ErrorResponse>()),
        ("kr-history.schema.json", of::<KrHistory>()),
        ("room-list.schema.json", of::<RoomList>()),
        (
            "room-export.schema.json",
            of::<super::transfer::RoomExport>(),
        ),
        (
            "cycle-export.schema.json",
            of::<super::transfer::CycleExport>(),
        ),
        (
            "import-accepted.schema.json",
            of::<super::transfer::ImportAccepted>(),
        ),
        (
            "import-refused.schema.json",
            of::<super::transfer::ImportRefused>(),
        ),
        ("review.schema.json", of::<crate::okr::review::Review>()),
        (
            "carry-over.schema.json",
            of::<crate::okr::carry::CarryOver>(),
        ),
        (
            "carry-result.schema.json",
            of::<crate::okr::carry::CarryResult>(),
        ),
        (
            "template-list.schema.json",
            of::<super::review::TemplateList>(),
        ),
        (
            "from-template.schema.json",
            of::<super::review::FromTemplate>(),
        ),
        (
            "filled-from-template.schema.json",
            of::<super::review::FilledFromTemplate>(),
        ),
    ]
}
