/**
 * Migrations of the `metadata` component in the shared SQLite database. Append-only:
 * never edit a shipped entry, add a new one. Times are integer milliseconds since the
 * epoch; JSON columns hold objects written by the store.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    password_hash TEXT NOT NULL,
    token_version INTEGER NOT NULL DEFAULT 0,
    storage_used INTEGER NOT NULL DEFAULT 0,
    storage_quota INTEGER NOT NULL,
    -- The owner's newest change seq, bumped in the transaction that appends a change,
    -- so seqs are gapless and ordered by commit.
    change_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );

  CREATE TABLE refresh_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    family_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    revoked_at INTEGER,
    ip TEXT,
    user_agent TEXT
  );
  CREATE INDEX refresh_sessions_family ON refresh_sessions (family_id);
  CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id);

  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
  );
  CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);

  -- pk keeps insertion order as the tie-break of entries written in the same millisecond.
  CREATE TABLE audit_log (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT,
    action TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    details TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX audit_log_user ON audit_log (user_id, created_at DESC, pk DESC);

  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id),
    parent_id TEXT REFERENCES nodes(id),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('folder', 'file')),
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    media_type TEXT,
    mtime INTEGER,
    revision INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    trashed_at INTEGER,
    -- The node whose trashing put this one in the trash; restore brings back exactly that batch.
    trash_root TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  -- NULLs are distinct in SQLite unique indexes, so the root parent is keyed as ''.
  CREATE UNIQUE INDEX nodes_live_name ON nodes (owner_id, COALESCE(parent_id, ''), name_key)
    WHERE trashed_at IS NULL;
  CREATE INDEX nodes_parent ON nodes (owner_id, parent_id);
  CREATE INDEX nodes_sha256 ON nodes (owner_id, sha256);
  CREATE INDEX nodes_trashed ON nodes (trashed_at) WHERE trashed_at IS NOT NULL;

  CREATE TABLE file_revisions (
    file_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    revision INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER,
    media_type TEXT,
    source_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (file_id, revision),
    UNIQUE (file_id, source_id)
  );
  CREATE INDEX file_revisions_sha256 ON file_revisions (sha256);
  CREATE INDEX file_revisions_source ON file_revisions (source_id);

  CREATE TABLE changes (
    owner_id TEXT NOT NULL REFERENCES users(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    node_id TEXT,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, seq)
  );

  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id),
    parent_id TEXT,
    name TEXT NOT NULL,
    length INTEGER NOT NULL,
    "offset" INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    mtime INTEGER,
    base_revision INTEGER,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    file_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX uploads_expiry ON uploads (status, expires_at);

  CREATE TABLE metadata_outbox (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );

  CREATE TABLE shares (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id),
    node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    token_hash TEXT UNIQUE,
    grantee_id TEXT REFERENCES users(id),
    role TEXT NOT NULL,
    password_hash TEXT,
    expires_at INTEGER,
    max_downloads INTEGER,
    downloads INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX shares_owner ON shares (owner_id, created_at);
  CREATE INDEX shares_grantee ON shares (grantee_id);
  `,
  `
  -- Notifications are the 'notify' changes of a feed; read_at is their read marker.
  ALTER TABLE changes ADD COLUMN read_at INTEGER;
  CREATE INDEX changes_notify ON changes (owner_id, seq) WHERE kind = 'notify';
  -- Set once, when a share is opened the first time (the owner is notified).
  ALTER TABLE shares ADD COLUMN opened_at INTEGER;
  CREATE INDEX shares_owner_grantee ON shares (owner_id, grantee_id, revoked_at);
  `,
  `
  -- Who created an upload (an editor of a shared folder uploads into its owner's tree);
  -- only they can see it. Earlier uploads were all made by their owner.
  ALTER TABLE uploads ADD COLUMN uploader_id TEXT REFERENCES users(id);
  UPDATE uploads SET uploader_id = owner_id;
  `,
  `
  -- Uploads that came in one POST /uploads/batch, and their order there.
  ALTER TABLE uploads ADD COLUMN batch_id TEXT;
  ALTER TABLE uploads ADD COLUMN batch_index INTEGER;
  CREATE INDEX uploads_batch ON uploads (batch_id, batch_index) WHERE batch_id IS NOT NULL;
  `,
  `
  -- The revision a committed upload made (batch answers carry it: no lookup per file).
  ALTER TABLE uploads ADD COLUMN revision INTEGER;
  `,
  `
  -- Holds on blobs about to be referenced, and claims of blobs being deleted
  -- (core/blob-holds.ts): a blob is deleted only under a claim that no hold or reference
  -- stood against, and referenced only under a hold that no claim stood against.
  CREATE TABLE blob_holds (
    sha256 TEXT NOT NULL,
    holder TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('hold', 'delete')),
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (sha256, holder)
  ) WITHOUT ROWID;
  CREATE INDEX blob_holds_holder ON blob_holds (holder);
  CREATE INDEX blob_holds_expiry ON blob_holds (expires_at);
  `,
  `
  -- Transcode outcomes by source content (they lived in the Cache, which an embedded
  -- server's restart or a Redis restart emptied: every preview answered 'pending' again,
  -- its blobs orphaned). A done record references its poster and preview blobs.
  CREATE TABLE transcodes (
    sha256 TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('done', 'skipped', 'failed')),
    file_id TEXT NOT NULL,
    poster_sha256 TEXT,
    preview_sha256 TEXT,
    reason TEXT,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX transcodes_poster ON transcodes (poster_sha256) WHERE poster_sha256 IS NOT NULL;
  CREATE INDEX transcodes_preview ON transcodes (preview_sha256) WHERE preview_sha256 IS NOT NULL;
  `,
  `
  -- Blobs kept referenced until a time (a zip while its signed URL is valid), then swept.
  CREATE TABLE blob_keeps (
    sha256 TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (sha256, holder)
  ) WITHOUT ROWID;
  CREATE INDEX blob_keeps_expiry ON blob_keeps (expires_at);
  `,
];
