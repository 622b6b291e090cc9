// The queue's SQL against a real PostgreSQL: claiming, leases, the write-once result. Needs
// DECI_TEST_POSTGRES=postgresql://USER@HOST:PORT/DB (test.sh starts a throwaway cluster with
// tools/pg/throwaway.sh); each test works in a database of its own (PostgresTestCase).
import DeciDiffusion
import DeciImage
import Foundation
import Logging
import XCTest
@testable import DeciQueuePostgres

final class JobStoreTests: PostgresTestCase {
    private func store() throws -> JobStore {
        let store = JobStore(link: PostgresLink(url: try XCTUnwrap(url), logger: Logger(label: "test")))
        try QueueSchema.migrate(store.link)
        return store
    }

    @discardableResult
    private func enqueue(_ store: JobStore, model: String = "demo", maxAttempts: Int = 3, limit: Int = 100) throws -> JobID {
        let id = JobID.make()
        let added = try store.enqueue(id: id, model: model, seed: 7, spec: "{}", maxAttempts: maxAttempts, queueLimit: limit)
        XCTAssertTrue(added)
        return id
    }

    private func outcome(_ png: String = "aGVsbG8=") -> JobStore.Outcome {
        let p = StoredParameters(GenerationParameters(prompt: "p", steps: 2, sampler: "DDIM", cfgScale: 7.5, seed: 7, width: 64, height: 64))
        return JobStore.Outcome(state: .succeeded, error: nil, warnings: [], timings: nil, partial: false, progress: JobProgress(step: 2, totalSteps: 2),
                                resolved: nil, images: [StoredImage(png: png, parameters: p)])
    }

    func testMigrationIsIdempotentAndSafeToRunConcurrently() throws {
        let url = try XCTUnwrap(self.url)
        let failures = Collected()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let link = PostgresLink(url: url, logger: Logger(label: "test"))
            do { try QueueSchema.migrate(link); try QueueSchema.migrate(link) } catch { failures.add("\(error)") }
            link.close()
        }
        XCTAssertEqual(failures.all, [])
        let s = try store()
        let versions = try s.link.run("SELECT version FROM deci_schema ORDER BY version").rows.map { try $0.decode(Int.self) }
        XCTAssertEqual(versions, QueueSchema.migrations.map(\.version))
    }

    func testClaimTakesOldestJobOfItsModelsOnly() throws {
        let s = try store()
        let a1 = try enqueue(s, model: "a")
        let b1 = try enqueue(s, model: "b")
        let a2 = try enqueue(s, model: "a")
        XCTAssertEqual(try s.claim(owner: "w1", models: ["a"], lease: 30)?.id, a1)
        XCTAssertEqual(try s.claim(owner: "w1", models: ["a"], lease: 30)?.id, a2)
        XCTAssertNil(try s.claim(owner: "w1", models: ["a"], lease: 30))
        let b = try XCTUnwrap(s.claim(owner: "w2", models: ["b", "c"], lease: 30))
        XCTAssertEqual(b.id, b1)
        XCTAssertEqual(b.attempt, 1)
        XCTAssertEqual(try s.fetch(b1)?.state, .running)
        XCTAssertEqual(try s.fetch(b1)?.leaseOwner, "w2")
    }

    func testConcurrentClaimsNeverShareAJob() throws {
        let s = try store()
        var ids = Set<JobID>()
        for _ in 0..<24 { ids.insert(try enqueue(s)) }
        let url = try XCTUnwrap(self.url)
        let claimed = Collected()
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            let mine = JobStore(link: PostgresLink(url: url, logger: Logger(label: "test")))
            while let c = try? mine.claim(owner: "w\(w)", models: ["demo"], lease: 30) { claimed.add(c.id.rawValue) }
            mine.link.close()
        }
        XCTAssertEqual(claimed.all.count, 24, "every job claimed once")
        XCTAssertEqual(Set(claimed.all.map(JobID.init(rawValue:))), ids)
    }

    func testExpiredLeaseRequeuesWithAttemptCountedThenFails() throws {
        let s = try store()
        let id = try enqueue(s, maxAttempts: 2)
        XCTAssertNotNil(try s.claim(owner: "w1", models: ["demo"], lease: 0.2))
        XCTAssertEqual(try s.requeueExpired().count, 0, "the lease is still live")
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try s.requeueExpired().map(\.state), [.queued])
        var row = try XCTUnwrap(s.fetch(id))
        XCTAssertEqual(row.state, .queued)
        XCTAssertEqual(row.attempts, 1)
        XCTAssertNil(row.leaseOwner)
        let second = try XCTUnwrap(s.claim(owner: "w2", models: ["demo"], lease: 0.2))
        XCTAssertEqual(second.attempt, 2)
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try s.requeueExpired().map(\.state), [.failed])
        row = try XCTUnwrap(s.fetch(id))
        XCTAssertEqual(row.state, .failed)
        XCTAssertEqual(row.attempts, 2)
        XCTAssertTrue(row.error?.contains("lease expired") == true, row.error ?? "no error")
        XCTAssertNotNil(row.finished)
    }

    func testResultIsWrittenOnceAndOnlyByTheLeaseHolder() throws {
        let s = try store()
        let id = try enqueue(s)
        let first = try XCTUnwrap(s.claim(owner: "w1", models: ["demo"], lease: 0.2))
        Thread.sleep(forTimeInterval: 0.3)
        try s.requeueExpired()
        let second = try XCTUnwrap(s.claim(owner: "w2", models: ["demo"], lease: 30))
        // w1 comes back: its heartbeat learns it lost the lease, and its result is refused.
        XCTAssertNil(try s.heartbeat(first, owner: "w1", lease: 30, beat: JobStore.Beat()))
        XCTAssertFalse(try s.finish(first, owner: "w1", outcome: outcome("b2xk")))
        XCTAssertTrue(try s.finish(second, owner: "w2", outcome: outcome()))
        XCTAssertFalse(try s.finish(second, owner: "w2", outcome: outcome()), "a second write of the same attempt")
        let images = try s.images(id)
        XCTAssertEqual(images.map(\.png), [Array("hello".utf8)])
        let row = try XCTUnwrap(s.fetch(id))
        XCTAssertEqual(row.state, .succeeded)
        XCTAssertEqual(row.attempts, 2)
        XCTAssertEqual(row.imageCount, 1)
    }

    func testLateResultIsKeptWhenNoOtherWorkerTookTheJob() throws {
        let s = try store()
        let id = try enqueue(s)
        let claim = try XCTUnwrap(s.claim(owner: "w1", models: ["demo"], lease: 0.2))
        Thread.sleep(forTimeInterval: 0.3)
        try s.requeueExpired()
        XCTAssertTrue(try s.finish(claim, owner: "w1", outcome: outcome()))
        XCTAssertEqual(try s.fetch(id)?.state, .succeeded)
        XCTAssertNil(try s.claim(owner: "w2", models: ["demo"], lease: 30), "a finished job is not claimed again")
    }

    func testCancelQueuedAtOnceAndRunningAtItsNextHeartbeat() throws {
        let s = try store()
        let running = try enqueue(s)
        let queued = try enqueue(s)
        let claim = try XCTUnwrap(s.claim(owner: "w1", models: ["demo"], lease: 30))
        XCTAssertEqual(try s.cancel(queued), .cancelled)
        XCTAssertEqual(try s.cancel(running), .running)
        XCTAssertNil(try s.cancel(JobID(rawValue: "job_none")))
        XCTAssertEqual(try s.heartbeat(claim, owner: "w1", lease: 30, beat: JobStore.Beat(progress: JobProgress(step: 1, totalSteps: 4))), true)
        XCTAssertEqual(try s.fetch(running)?.progress?.step, 1)
        var o = outcome()
        o.state = .cancelled
        XCTAssertTrue(try s.finish(claim, owner: "w1", outcome: o))
        XCTAssertEqual(try s.fetch(running)?.state, .cancelled)
    }

    func testQueueLimitAndPositions() throws {
        let s = try store()
        let first = try enqueue(s, limit: 2)
        let second = try enqueue(s, limit: 2)
        XCTAssertFalse(try s.enqueue(id: JobID.make(), model: "demo", seed: 1, spec: "{}", maxAttempts: 3, queueLimit: 2))
        XCTAssertEqual(try s.fetch(first)?.position, 1)
        XCTAssertEqual(try s.fetch(second)?.position, 2)
        XCTAssertEqual(try s.stats(workerTimeout: 60).queued, 2)
    }

    func testCleanupDropsFinishedJobsAndRemembersThem() throws {
        let s = try store()
        let id = try enqueue(s)
        let claim = try XCTUnwrap(s.claim(owner: "w1", models: ["demo"], lease: 30))
        XCTAssertTrue(try s.finish(claim, owner: "w1", outcome: outcome()))
        let kept = try enqueue(s)
        XCTAssertEqual(try s.cleanup(lifetime: 0), 1)
        XCTAssertNil(try s.fetch(id))
        XCTAssertTrue(try s.isExpired(id))
        XCTAssertEqual(try s.images(id).count, 0, "images go with their job")
        XCTAssertNotNil(try s.fetch(kept), "unfinished jobs stay")
    }
}
