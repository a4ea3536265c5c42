//! Enumerations carried in frames: message types, priorities, user types, error codes.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }

            /// Parses the wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// A message type: the go-wsc list of 56 plus the control types `join` and `leave`.
    MessageType {
        /// Plain text.
        #[default]
        Text = "text", /// Markdown.
        Markdown = "markdown", /// Rich text.
        RichText = "rich_text", /// Source code.
        Code = "code", /// Image.
        Image = "image", /// File.
        File = "file", /// Audio.
        Audio = "audio", /// Video.
        Video = "video", /// Voice note.
        Voice = "voice", /// GIF.
        Gif = "gif", /// Document.
        Document = "document", /// Spreadsheet.
        Spreadsheet = "spreadsheet", /// Presentation.
        Presentation = "presentation", /// System message.
        System = "system", /// Notice.
        Notice = "notice", /// Event.
        Event = "event", /// Announcement.
        Announcement = "announcement", /// Alert.
        Alert = "alert", /// Error (server to client only).
        Error = "error", /// Info.
        Info = "info", /// Success.
        Success = "success", /// Warning.
        Warning = "warning", /// Heartbeat.
        Heartbeat = "heartbeat", /// Ping (control).
        Ping = "ping", /// Pong (control).
        Pong = "pong", /// Card.
        Card = "card", /// Link.
        Link = "link", /// Quote.
        Quote = "quote", /// Command.
        Command = "command", /// Task.
        Task = "task", /// Poll.
        Poll = "poll", /// Form.
        Form = "form", /// Invite.
        Invite = "invite", /// Acknowledgement (control).
        Ack = "ack", /// Typing indicator.
        Typing = "typing", /// Read receipt.
        Read = "read", /// Delivered receipt.
        Delivered = "delivered", /// Location.
        Location = "location", /// Emoji.
        Emoji = "emoji", /// Sticker.
        Sticker = "sticker", /// Forward.
        Forward = "forward", /// JSON payload.
        Json = "json", /// XML payload.
        Xml = "xml", /// Binary payload (encoded in content).
        Binary = "binary", /// Contact.
        Contact = "contact", /// Calendar.
        Calendar = "calendar", /// Payment.
        Payment = "payment", /// Order.
        Order = "order", /// Product.
        Product = "product", /// Recall.
        Recall = "recall", /// Edit.
        Edit = "edit", /// Reaction.
        Reaction = "reaction", /// Thread.
        Thread = "thread", /// Reply.
        Reply = "reply", /// Mention.
        Mention = "mention", /// Custom.
        Custom = "custom", /// Join a group (control).
        Join = "join", /// Leave a group (control).
        Leave = "leave",
    }
);

wire_enum!(
    /// Delivery priority: a backed-up session queue writes higher priorities first.
    Priority {
        /// Lowest.
        Low = "low", /// The default.
        #[default]
        Normal = "normal", /// High.
        High = "high", /// Urgent.
        Urgent = "urgent", /// Highest.
        Critical = "critical",
    }
);

impl Priority {
    /// 0 for `low` up to 4 for `critical`.
    pub fn rank(self) -> usize {
        match self {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
            Priority::Critical => 4,
        }
    }
}

wire_enum!(
    /// The kind of user behind a session.
    UserType {
        /// A customer (the default).
        #[default]
        Customer = "customer", /// A service agent.
        Agent = "agent", /// An administrator.
        Admin = "admin", /// A bot.
        Bot = "bot", /// A VIP customer.
        Vip = "vip", /// An anonymous visitor.
        Visitor = "visitor", /// A system account.
        System = "system",
    }
);

wire_enum!(
    /// The `code` of an error frame or failed receipt.
    ErrorCode {
        /// The frame is not JSON.
        InvalidJson = "invalid_json", /// Missing or conflicting fields.
        InvalidFrame = "invalid_frame", /// An unknown `type`.
        UnknownType = "unknown_type", /// The frame is over the size limit.
        TooLarge = "too_large", /// Not allowed for this session.
        Forbidden = "forbidden", /// The group does not exist.
        UnknownGroup = "unknown_group", /// Too many frames.
        RateLimited = "rate_limited", /// A server fault.
        #[default]
        Internal = "internal", /// The recipient has no live session (receipts only).
        UserOffline = "user_offline",
    }
);
