-- An email address no longer names one account: sign-up must not tell a stranger whether an
-- address is registered (usernames are public by nature; addresses are not). Sign-in by
-- address tries the accounts that have it.
--
-- SQLite cannot drop a constraint: the table is rebuilt. Migrations run on a connection
-- with foreign keys off (`store::SqliteStore::connect`), so dropping the old table cascades
-- to nothing, and the other tables' references, by name, find the new one.
CREATE TABLE users_new (
    id            BLOB PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);
INSERT INTO users_new (id, username, email, password_hash, created_at, updated_at)
    SELECT id, username, email, password_hash, created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_email ON users (email);
