-- An email address no longer names one account: sign-up must not tell a stranger whether an
-- address is registered (usernames are public by nature; addresses are not). Sign-in by
-- address tries the accounts that have it.
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE INDEX users_email ON users (email);
