package dev.tokenmeter.edge.proxy.batch;

import org.jooq.DSLContext;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;

import static dev.tokenmeter.db.jooq.Tables.BATCH_FILE;
import static dev.tokenmeter.db.jooq.Tables.BATCH_JOB;

/**
 * Whose each Batch API file and batch is, and a batch's reservation and billing state (tables {@code batch_file},
 * {@code batch_job}, V35_1, ADR 0087). Files and batches made on the service's key share it upstream, so the edge
 * answers one only to the user who made it.
 */
public final class BatchStore {

    /** One batch as the edge created it; {@code billedAt} null while its end has not been billed. */
    public record Job(String batchId, String userId, String apiKeyId, String tenantId, String project, String inputFileId,
                      String endpoint, String reservationId, long estimateNanoUsd, Instant createdAt, Instant billedAt) {
    }

    private final DSLContext db;

    public BatchStore(DSLContext db) {
        this.db = db;
    }

    /** Records {@code fileId} as the user's; a file recorded already keeps its owner. */
    public void recordFile(String fileId, String userId, String apiKeyId, String purpose) {
        db.insertInto(BATCH_FILE).set(BATCH_FILE.FILE_ID, fileId).set(BATCH_FILE.USER_ID, userId)
                .set(BATCH_FILE.API_KEY_ID, apiKeyId).set(BATCH_FILE.PURPOSE, purpose)
                .onConflictDoNothing().execute();
    }

    /** True when {@code fileId} is the user's. */
    public boolean ownsFile(String userId, String fileId) {
        return db.fetchExists(BATCH_FILE, BATCH_FILE.FILE_ID.eq(fileId).and(BATCH_FILE.USER_ID.eq(userId)));
    }

    public void recordBatch(Job j) {
        db.insertInto(BATCH_JOB).set(BATCH_JOB.BATCH_ID, j.batchId()).set(BATCH_JOB.USER_ID, j.userId())
                .set(BATCH_JOB.API_KEY_ID, j.apiKeyId()).set(BATCH_JOB.TENANT_ID, j.tenantId())
                .set(BATCH_JOB.PROJECT, j.project()).set(BATCH_JOB.INPUT_FILE_ID, j.inputFileId())
                .set(BATCH_JOB.ENDPOINT, j.endpoint()).set(BATCH_JOB.RESERVATION_ID, j.reservationId())
                .set(BATCH_JOB.ESTIMATE_NANO_USD, j.estimateNanoUsd())
                .set(BATCH_JOB.CREATED_AT, OffsetDateTime.ofInstant(j.createdAt(), ZoneOffset.UTC))
                .execute();
    }

    /** The user's batch {@code batchId}; empty when there is none or it is another user's. */
    public Optional<Job> batch(String userId, String batchId) {
        return db.selectFrom(BATCH_JOB).where(BATCH_JOB.BATCH_ID.eq(batchId).and(BATCH_JOB.USER_ID.eq(userId)))
                .fetchOptional(BatchStore::job);
    }

    /** The user's batches, newest first, after {@code afterBatchId} (null: from the newest), at most {@code limit}. */
    public List<Job> batches(String userId, String afterBatchId, int limit) {
        var where = BATCH_JOB.USER_ID.eq(userId);
        if (afterBatchId != null) {
            Job after = batch(userId, afterBatchId).orElse(null);
            if (after == null) {
                return List.of();
            }
            OffsetDateTime at = OffsetDateTime.ofInstant(after.createdAt(), ZoneOffset.UTC);
            where = where.and(BATCH_JOB.CREATED_AT.lt(at)
                    .or(BATCH_JOB.CREATED_AT.eq(at).and(BATCH_JOB.BATCH_ID.lt(afterBatchId))));
        }
        return db.selectFrom(BATCH_JOB).where(where).orderBy(BATCH_JOB.CREATED_AT.desc(), BATCH_JOB.BATCH_ID.desc())
                .limit(limit).fetch(BatchStore::job);
    }

    /** Batches not billed yet, oldest first (the poller's work). */
    public List<Job> open(int limit) {
        return db.selectFrom(BATCH_JOB).where(BATCH_JOB.BILLED_AT.isNull()).orderBy(BATCH_JOB.CREATED_AT)
                .limit(limit).fetch(BatchStore::job);
    }

    /**
     * Marks the batch billed (its end seen, its reservation settled to {@code billedNanoUsd}): true for the one reader
     * that marks it, false when another (edge) did first, which then settles.
     */
    public boolean markBilled(String batchId, String endStatus, long billedNanoUsd, Instant at) {
        return db.update(BATCH_JOB).set(BATCH_JOB.ENDED_STATUS, endStatus).set(BATCH_JOB.BILLED_NANO_USD, billedNanoUsd)
                .set(BATCH_JOB.BILLED_AT, OffsetDateTime.ofInstant(at, ZoneOffset.UTC))
                .where(BATCH_JOB.BATCH_ID.eq(batchId).and(BATCH_JOB.BILLED_AT.isNull())).execute() == 1;
    }

    private static Job job(dev.tokenmeter.db.jooq.tables.records.BatchJobRecord r) {
        return new Job(r.getBatchId(), r.getUserId(), r.getApiKeyId(), r.getTenantId(), r.getProject(), r.getInputFileId(),
                r.getEndpoint(),
                r.getReservationId(), r.getEstimateNanoUsd(), r.getCreatedAt().toInstant(),
                r.getBilledAt() == null ? null : r.getBilledAt().toInstant());
    }
}
