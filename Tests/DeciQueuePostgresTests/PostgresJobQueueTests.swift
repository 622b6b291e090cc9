// The API node's queue and a worker in one process, over a real PostgreSQL, on the bundled demo
// model: the images equal the in-process service's, events arrive through NOTIFY, and a running
// job is cancelled across the database. (tools/e2e/queue_test.py runs them as separate processes.)
import DeciDiffusion
import Foundation
import TestSupport
import XCTest
@testable import DeciQueuePostgres

final class PostgresJobQueueTests: PostgresTestCase {
    static let demoFolder = FixturePaths.root.deletingLastPathComponent().appendingPathComponent("Models/demo")

    private func spec(seed: UInt64, steps: Int) -> JobSpec {
        var r = GenerationRequest(prompt: "a blue circle")
        r.steps = steps
        return JobSpec(request: r, seed: seed, preview: PreviewOptions(every: 1))
    }

    private func wait(_ queue: any JobQueue, _ id: JobID, timeout: Double = 120) throws -> JobSnapshot {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let s = try queue.job(id)
            if s.status.isFinished { return s }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Timeout(description: "job \(id) did not finish in \(timeout) s")
    }

    func testQueueAndWorkerMatchTheInProcessServiceAndCancelAcrossTheDatabase() throws {
        let url = try XCTUnwrap(self.url)
        let catalog = try ModelCatalog(folder: Self.demoFolder)
        var settings = QueueSettings()
        settings.leaseSeconds = 5
        settings.pollSeconds = 0.5
        let api = try PostgresJobQueue(url: url, catalog: catalog, configuration: ServiceConfiguration(), settings: settings)
        defer { api.shutdown() }
        let local = GenerationService(catalog: catalog)
        defer { local.shutdown() }
        try local.preload()
        let worker = QueueWorker(url: url, service: local, name: "test-worker", models: catalog.names, settings: settings)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? worker.run()
            done.signal()
        }
        defer {
            worker.stop()
            done.wait()
        }

        let job = try api.submit(spec(seed: 31, steps: 3))
        XCTAssertEqual(job.status, .queued)
        XCTAssertEqual(job.seed, 31)
        let events = try api.events(job.id)
        let final = try wait(api, job.id)
        XCTAssertEqual(final.status, .succeeded, final.error ?? "")
        XCTAssertEqual(final.imageCount, 1)
        XCTAssertEqual(final.resolved?.steps, 3)
        XCTAssertEqual(final.progress?.step, 3)

        // The same spec on a fresh in-process service: the same PNG, byte for byte.
        let reference = GenerationService(catalog: catalog)
        defer { reference.shutdown() }
        let refJob = try reference.submit(spec(seed: 31, steps: 3))
        XCTAssertEqual(try wait(reference, refJob.id).status, .succeeded)
        XCTAssertEqual(try api.png(job.id, index: 0), try reference.png(refJob.id, index: 0))
        XCTAssertEqual(try api.images(job.id).first?.parameters, try reference.images(refJob.id).first?.parameters)

        // Its event stream (started before the job ran) ends with the final event.
        let collected = Collected()
        let streamDone = DispatchSemaphore(value: 0)
        Task {
            for await e in events {
                switch e {
                case .queued: collected.add("queued")
                case .started: collected.add("started")
                case .progress: collected.add("progress")
                case .succeeded: collected.add("succeeded")
                case .failed: collected.add("failed")
                case .cancelled: collected.add("cancelled")
                }
            }
            streamDone.signal()
        }
        XCTAssertEqual(streamDone.wait(timeout: .now() + 30), .success, "the event stream ended")
        XCTAssertEqual(collected.all.last, "succeeded")
        // A 3-step job can start and finish between two notifications the stream reads, so
        // "started" may be coalesced away; what must hold is that nothing else ends it.
        XCTAssertFalse(collected.all.contains("failed") || collected.all.contains("cancelled"), "\(collected.all)")

        // Cancelling a running job: the worker stops at its next step.
        let long = try api.submit(spec(seed: 5, steps: 500))
        let deadline = Date().addingTimeInterval(60)
        while try api.job(long.id).progress?.step ?? 0 < 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertEqual(try api.job(long.id).status, .running)
        try api.cancel(long.id)
        let cancelled = try wait(api, long.id, timeout: 30)
        XCTAssertEqual(cancelled.status, .cancelled)
        XCTAssertLessThan(cancelled.progress?.step ?? 500, 500)

        // Unknown ids are 404; the health view sees the worker's model.
        XCTAssertThrowsError(try api.job(JobID(rawValue: "job_missing"))) { XCTAssertEqual($0 as? ServiceError, .notFound(JobID(rawValue: "job_missing"))) }
        XCTAssertEqual(api.health.models.first?.loaded, true)
    }
}

private struct Timeout: Error, CustomStringConvertible { var description: String }
