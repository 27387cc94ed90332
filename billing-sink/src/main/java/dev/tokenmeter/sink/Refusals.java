package dev.tokenmeter.sink;

import org.jooq.DSLContext;
import org.jooq.exception.DataAccessException;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.function.BiConsumer;

/**
 * Tells a row the database refuses for good from a database that is not answering, and writes a batch so
 * that the first kind is set aside instead of stopping the sink (ADR 0055).
 *
 * <p>The row's fault — retrying it can never succeed: SQLSTATE class 22 (data exception: a nul character
 * in text, a value out of range), class 23 (integrity constraint violation) and 54000 (program limit
 * exceeded: an index row larger than a btree page allows, e.g. a 10 KB model name in a primary key).
 * Everything else (connection lost, serialization failure, shutdown, out of disk, a statement bug) is not
 * the row's: the batch fails, and {@link SinkLoop} pauses and retries it as it is.
 */
final class Refusals {

    private static final Logger log = LoggerFactory.getLogger(Refusals.class);

    /** Writes some rows in the caller's transaction and returns how many it wrote. */
    @FunctionalInterface
    interface Write<T> {
        int apply(DSLContext tx, List<T> rows);
    }

    private Refusals() {
    }

    /** True when the database refused the row itself, so the same row will be refused on every retry. */
    static boolean isRowsFault(DataAccessException e) {
        String state = e.sqlState();
        return state != null && (state.startsWith("22") || state.startsWith("23") || state.equals("54000"));
    }

    /**
     * Writes the rows in one go, in a savepoint; when the database refuses a row, writes them one at a time,
     * each in its own savepoint, and hands every refused row with the reason to {@code refused}. Returns how
     * many rows were written. An error that is not the row's fault is thrown as it is.
     */
    static <T> int writeSettingAside(DSLContext tx, List<T> rows, Write<T> write, BiConsumer<T, String> refused) {
        if (rows.isEmpty()) {
            return 0;
        }
        try {
            // In a savepoint: after a failed statement Postgres refuses everything else in the transaction,
            // so the row-by-row attempt needs the batch's attempt rolled back first.
            return tx.transactionResult(batch -> write.apply(DSL.using(batch), rows));
        } catch (DataAccessException e) {
            if (!isRowsFault(e)) {
                throw e;
            }
            log.warn("the database refused a row of a batch of {} ({}); writing the batch row by row", rows.size(), reason(e));
        }
        int written = 0;
        for (T row : rows) {
            try {
                written += tx.transactionResult(one -> write.apply(DSL.using(one), List.of(row)));
            } catch (DataAccessException e) {
                if (!isRowsFault(e)) {
                    throw e;
                }
                refused.accept(row, "refused by the database: " + reason(e));
            }
        }
        return written;
    }

    /** The SQLSTATE and the innermost message, e.g. {@code 22021 invalid byte sequence for encoding "UTF8": 0x00}. */
    static String reason(DataAccessException e) {
        Throwable t = e;
        while (t.getCause() != null) {
            t = t.getCause();
        }
        return (e.sqlState() == null ? "" : e.sqlState() + " ") + t.getMessage();
    }
}
