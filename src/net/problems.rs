//! Every kind of problem a Jol node answers (RFC 9457), in one table: its slug (the last part of
//! the `type` URI, and the quarantine reason of a refused submission), its HTTP status and its
//! title. A kind cannot be answered with two statuses or titles, and a new one is one line here.

use hyper::StatusCode;

macro_rules! kinds {
    ($($kind:ident => $slug:literal, $status:ident, $title:literal;)*) => {
        /// A kind of problem; see the module doc.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemKind {
            $(#[doc = $title] $kind,)*
        }

        impl ProblemKind {
            /// Every kind, for the descriptions and the tests.
            pub const ALL: &[ProblemKind] = &[$(ProblemKind::$kind,)*];

            /// The last part of the `type` URI.
            pub(crate) fn slug(self) -> &'static str {
                match self { $(ProblemKind::$kind => $slug,)* }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> StatusCode {
                match self { $(ProblemKind::$kind => StatusCode::$status,)* }
            }

            pub(crate) fn title(self) -> &'static str {
                match self { $(ProblemKind::$kind => $title,)* }
            }
        }
    };
}

kinds! {
    AmbiguousEventId => "ambiguous-event-id", CONFLICT, "Ambiguous event id";
    BadClient => "bad-client", BAD_REQUEST, "Bad X-Road-Client";
    BadEventId => "bad-event-id", BAD_REQUEST, "Bad event id";
    BadPin => "bad-pin", BAD_REQUEST, "Bad PIN";
    BadProofRequest => "bad-proof-request", BAD_REQUEST, "Bad proof request";
    BadQuery => "bad-query", BAD_REQUEST, "Bad query parameter";
    BadTilePath => "bad-tile-path", BAD_REQUEST, "Bad tile path";
    BatchTooLarge => "batch-too-large", PAYLOAD_TOO_LARGE, "Batch too large";
    BodyTimeout => "body-timeout", REQUEST_TIMEOUT, "Request body too slow";
    BodyTooLarge => "body-too-large", PAYLOAD_TOO_LARGE, "Request body too large";
    BodyUnreadable => "body-unreadable", BAD_REQUEST, "Request body could not be read";
    ConsentAfterEvent => "consent-after-event", UNPROCESSABLE_ENTITY, "Consent dated in the future";
    CredentialNotFound => "credential-not-found", NOT_FOUND, "Credential not found";
    CredentialRevoked => "credential-revoked", CONFLICT, "Credential already revoked";
    CrossOrigin => "cross-origin", FORBIDDEN, "Cross-origin request refused";
    DuplicateKey => "duplicate-key", BAD_REQUEST, "Duplicate member name";
    EventNotFound => "event-not-found", NOT_FOUND, "Event not found";
    EventNotInLog => "event-not-in-log", NOT_FOUND, "No such event";
    ErasureNotFound => "erasure-not-found", NOT_FOUND, "Erasure not found";
    EventTooLarge => "event-too-large", PAYLOAD_TOO_LARGE, "Event too large";
    EntriesNotServed => "entries-not-served", NOT_FOUND, "Entry bundles are not served";
    IdempotencyConflict => "idempotency-conflict", CONFLICT, "Idempotency key reused";
    Internal => "internal", INTERNAL_SERVER_ERROR, "Internal error";
    InvalidRequest => "invalid-request", UNPROCESSABLE_ENTITY, "Invalid request";
    MalformedJson => "malformed-json", BAD_REQUEST, "Malformed JSON";
    ManifestExpired => "manifest-expired", SERVICE_UNAVAILABLE, "Manifest expired";
    MethodNotAllowed => "method-not-allowed", METHOD_NOT_ALLOWED, "Method not allowed";
    MissingContentType => "missing-content-type", UNSUPPORTED_MEDIA_TYPE, "Missing content type";
    MissingHeader => "missing-header", BAD_REQUEST, "Missing X-Road header";
    NoCheckpoint => "no-checkpoint", NOT_FOUND, "No checkpoint yet";
    NotAMember => "not-a-member", FORBIDDEN, "Not a member";
    NotAReader => "not-a-reader", FORBIDDEN, "Not a reader";
    NotAnIssuer => "not-an-issuer", NOT_FOUND, "This node issues no credentials";
    NotFound => "not-found", NOT_FOUND, "Not found";
    NotWriter => "not-writer", SERVICE_UNAVAILABLE, "Standby replica";
    NothingToErase => "nothing-to-erase", NOT_FOUND, "Nothing to erase";
    NotYetCovered => "not-yet-covered", CONFLICT, "Not covered yet";
    PersonNotFound => "person-not-found", NOT_FOUND, "Person not found";
    QuarantineFull => "quarantine-full", INSUFFICIENT_STORAGE, "Quarantine full";
    RateLimited => "rate-limited", TOO_MANY_REQUESTS, "Too many requests";
    SchemaInvalid => "schema-invalid", UNPROCESSABLE_ENTITY, "Data does not satisfy the schema";
    ScopeMissing => "scope-missing", FORBIDDEN, "Token lacks the scope";
    ShuttingDown => "shutting-down", SERVICE_UNAVAILABLE, "Node shutting down";
    SigninRateLimited => "signin-rate-limited", TOO_MANY_REQUESTS, "Too many refused sign-ins";
    StorageUnavailable => "storage-unavailable", SERVICE_UNAVAILABLE, "Storage unavailable";
    TileNotCovered => "tile-not-covered", NOT_FOUND, "Tile not in the checkpointed tree";
    WitnessBadRequest => "witness-bad-request", BAD_REQUEST, "Malformed add-checkpoint request";
    WitnessInconsistent => "witness-inconsistent", UNPROCESSABLE_ENTITY, "Checkpoint not consistent";
    WitnessRootMismatch => "witness-root-mismatch", CONFLICT, "Another root for the size co-signed";
    WitnessUnknownOrigin => "witness-unknown-origin", NOT_FOUND, "Unknown log origin";
    WitnessUntrusted => "witness-untrusted", FORBIDDEN, "No valid signature by the log";
    SupersedesForeign => "supersedes-foreign", UNPROCESSABLE_ENTITY, "Correction of another event";
    SuppressionNeedsAdmin => "suppression-needs-admin", FORBIDDEN, "Small cells stay suppressed";
    TokensUnreadable => "tokens-unreadable", UNAUTHORIZED, "Token list unreadable";
    Unauthorized => "unauthorized", UNAUTHORIZED, "Bearer token required";
    UnknownHost => "unknown-host", MISDIRECTED_REQUEST, "Not this node's name";
    ViewsBehind => "views-behind", SERVICE_UNAVAILABLE, "Views catching up";
    UnsupportedMediaType => "unsupported-media-type", UNSUPPORTED_MEDIA_TYPE, "Unsupported media type";
    VacancyNotFound => "vacancy-not-found", NOT_FOUND, "Vacancy not found";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_slug_names_one_kind() {
        let mut slugs: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.slug()).collect();
        let n = slugs.len();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), n, "a slug names two kinds");
        for k in ProblemKind::ALL {
            assert!(
                k.status().is_client_error() || k.status().is_server_error(),
                "{k:?}"
            );
            assert!(
                !k.title().is_empty()
                    && k.slug().chars().all(|c| c.is_ascii_lowercase() || c == '-')
            );
        }
    }
}
