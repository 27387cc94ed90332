package dev.tokenmeter.testkit;

/** A Postgres user and its password, from {@link PostgresEngine#login(String)}; never print the password. */
public record DatabaseLogin(String user, String password) {

    @Override
    public String toString() {
        return "DatabaseLogin[user=" + user + ", password=<redacted>]";
    }
}
