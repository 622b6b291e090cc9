import DeciImage
import DeciTensor
import Foundation
import XCTest

@testable import DeciDiffusion

/// The service on the bundled demo model (64x64, milliseconds per step).
final class GenerationServiceTests: XCTestCase {
    func makeService(_ configure: (inout ServiceConfiguration) -> Void = { _ in },
                     observer: (any GenerationServiceObserver)? = nil) throws -> GenerationService {
        var config = ServiceConfiguration()
        configure(&config)
        let catalog = try ModelCatalog(folder: PipelineFixtures.demoFolder)
        let service = GenerationService(catalog: catalog, configuration: config, observer: observer)
        try service.preload()
        addTeardownBlock { service.shutdown() }
        return service
    }

    func spec(_ prompt: String = "a red circle on a blue background", steps: Int = 4, seed: UInt64? = 7,
              _ edit: (inout GenerationRequest) -> Void = { _ in }) -> JobSpec {
        var request = GenerationRequest(prompt: prompt)
        request.steps = steps
        edit(&request)
        return JobSpec(request: request, seed: seed)
    }

    func testAJobGivesTheLibrarysPNGBytes() async throws {
        let service = try makeService()
        let submitted = try service.submit(spec(steps: 6) { $0.imagesPerPrompt = 2 })
        XCTAssertEqual(submitted.status, .queued)
        XCTAssertEqual(submitted.queuePosition, 1)
        let done = try await service.waitUntilFinished(submitted.id)
        XCTAssertEqual(done.status, .succeeded, done.error ?? "")
        XCTAssertEqual(done.imageCount, 2)
        XCTAssertEqual(done.progress?.step, 6)
        XCTAssertNotNil(done.finished)

        let pipeline = try DiffusionPipeline(folder: PipelineFixtures.demoFolder)
        var request = GenerationRequest(prompt: "a red circle on a blue background")
        (request.steps, request.imagesPerPrompt, request.seed) = (6, 2, 7)
        let direct = try pipeline.generate(request)
        for i in 0..<2 {
            let png = try service.png(submitted.id, index: i)
            XCTAssertEqual(png, try direct.pngData(forImage: i, model: pipeline.modelName), "image \(i)")
            XCTAssertNotNil(try ImageFile.decode(png).text("parameters")?.contains("Seed: 7"))
        }
        XCTAssertThrowsError(try service.png(submitted.id, index: 2)) {
            XCTAssertEqual($0 as? ServiceError, .noImage(submitted.id, index: 2, count: 2))
        }
    }

    func testARandomSeedIsChosenAtSubmissionAndReported() async throws {
        let service = try makeService()
        let s = try service.submit(spec(seed: nil))
        let done = try await service.waitUntilFinished(s.id)
        XCTAssertEqual(done.seed, s.seed)
        XCTAssertEqual(done.resolved?.seed, s.seed)
        XCTAssertTrue(try ImageFile.decode(service.png(s.id, index: 0)).text("parameters")?.contains("Seed: \(s.seed),") ?? false)
    }

    func testEventsArriveInOrderAndEndAfterTheFinalOne() async throws {
        let service = try makeService()
        let s = try service.submit(spec(steps: 5))
        var names: [String] = []
        var steps: [Int] = []
        for await event in try service.events(s.id) {
            switch event {
            case .queued: names.append("queued")
            case .started: names.append("started")
            case let .progress(p, _): steps.append(p.step); if names.last != "progress" { names.append("progress") }
            case .succeeded: names.append("succeeded")
            case .failed, .cancelled: names.append("other")
            }
        }
        // The subscription may start before or after the runner picks the job up.
        XCTAssertTrue(names == ["queued", "started", "progress", "succeeded"] || names == ["started", "progress", "succeeded"]
                          || names.last == "succeeded" && !names.contains("other"), "\(names)")
        XCTAssertEqual(steps.last, 5)
        XCTAssertEqual(steps, steps.sorted())
        // A finished job's stream is just its final event.
        var late: [JobEvent] = []
        for await e in try service.events(s.id) { late.append(e) }
        XCTAssertEqual(late.count, 1)
        XCTAssertTrue(late[0].isTerminal)
    }

    func testAFullQueueIsRefusedWithRetryAfter() async throws {
        let service = try makeService { $0.queueSize = 2 }
        let long = try service.submit(spec(steps: 1000))
        try await waitFor { (try? service.job(long.id).status) == .running }
        let a = try service.submit(spec())
        let b = try service.submit(spec())
        XCTAssertEqual(a.queuePosition, 1)
        XCTAssertEqual(b.queuePosition, 2)
        XCTAssertThrowsError(try service.submit(spec())) { error in
            guard case let .queueFull(capacity, retry)? = error as? ServiceError else { return XCTFail("\(error)") }
            XCTAssertEqual(capacity, 2)
            XCTAssertGreaterThanOrEqual(retry, 1)
        }
        XCTAssertEqual(service.health.queueDepth, 2)
        // Cancelling a queued job frees its place at once and moves the one behind it up.
        XCTAssertEqual(try service.cancel(a.id).status, .cancelled)
        XCTAssertEqual(try service.job(b.id).queuePosition, 1)
        XCTAssertEqual(try service.job(a.id).imageCount, 0)
        _ = try service.submit(spec())
        try service.cancel(long.id)
        let ended = try await service.waitUntilFinished(long.id)
        XCTAssertEqual(ended.status, .cancelled)
    }

    func testCancellingARunningJobStopsItWithinAStepAndKeepsThePartialImage() async throws {
        let service = try makeService()
        let s = try service.submit(spec(steps: 1000))
        try await waitFor { ((try? service.job(s.id).progress?.step) ?? 0) >= 3 }
        let at = try service.cancel(s.id).progress?.step ?? 0
        let done = try await service.waitUntilFinished(s.id)
        XCTAssertEqual(done.status, .cancelled)
        let stoppedAt = try XCTUnwrap(done.progress?.step)
        XCTAssertLessThanOrEqual(stoppedAt, at + 1, "ran on after the cancel")
        XCTAssertLessThan(stoppedAt, 1000)
        XCTAssertTrue(done.partial)
        XCTAssertEqual(done.imageCount, 1)
        let image = try ImageFile.decode(service.png(s.id, index: 0)).image
        XCTAssertEqual(image.width, 64)
        // The runner goes on with the next job.
        let next = try await service.waitUntilFinished(service.submit(spec()).id)
        XCTAssertEqual(next.status, .succeeded)
    }

    func testWithoutKeepPartialACancelledJobHasNoImage() async throws {
        let service = try makeService()
        var sp = spec(steps: 1000)
        sp.keepPartialOnCancel = false
        let s = try service.submit(sp)
        try await waitFor { ((try? service.job(s.id).progress?.step) ?? 0) >= 1 }
        try service.cancel(s.id)
        let done = try await service.waitUntilFinished(s.id)
        XCTAssertEqual(done.status, .cancelled)
        XCTAssertEqual(done.imageCount, 0)
        XCTAssertFalse(done.partial)
    }

    func testPreviewsComeAtTheAskedStepsAndSizes() async throws {
        let service = try makeService()
        var sp = spec(steps: 6)
        sp.preview = PreviewOptions(every: 2, decodeEvery: 3, upscale: false)
        let s = try service.submit(sp)
        var seen: [(Int, JobPreview.Kind, Int)] = []
        for await event in try service.events(s.id) {
            if case let .progress(p, preview?) = event { seen.append((p.step, preview.kind, preview.images[0].width)) }
        }
        // Step 3 and 6: a decode (full size); step 2 and 4: the cheap map at latent size (1/8 for the real VAE).
        XCTAssertEqual(seen.map(\.0), [2, 3, 4, 6])
        XCTAssertEqual(seen.map(\.1), [.approximate, .decoded, .approximate, .decoded])
        let f = try XCTUnwrap(service.loadedPipeline()).vae.scaleFactor
        XCTAssertEqual(seen.map(\.2), [64 / f, 64, 64 / f, 64])
        // Previews never change the result.
        let pipeline = try DiffusionPipeline(folder: PipelineFixtures.demoFolder)
        var request = sp.request
        request.seed = 7
        XCTAssertEqual(try service.png(s.id, index: 0), try pipeline.generate(request).pngData(forImage: 0, model: pipeline.modelName))

        sp.preview = PreviewOptions(every: 1, upscale: true)
        var sizes = Set<Int>()
        for await event in try service.events(service.submit(sp).id) {
            if case let .progress(_, preview?) = event { sizes.insert(preview.images[0].width); XCTAssertFalse(preview.png.isEmpty) }
        }
        XCTAssertEqual(sizes, [64])
    }

    func testInvalidRequestsAreRefusedAtSubmissionNamingTheField() throws {
        let service = try makeService { $0.limits = GenerationLimits(maxPixelsPerImage: 128 * 128, maxBatch: 2) }
        func refusal(_ s: JobSpec) -> String {
            do { _ = try service.submit(s); return "accepted" } catch { return String(describing: error) }
        }
        XCTAssertTrue(refusal(spec { $0.width = 65 }).hasPrefix("width: 65"), refusal(spec { $0.width = 65 }))
        XCTAssertTrue(refusal(spec { $0.width = 256; $0.height = 256 }).contains("over the limit of 16384 pixels"))
        XCTAssertTrue(refusal(spec { $0.imagesPerPrompt = 3 }).contains("limit of 2"))
        XCTAssertTrue(refusal(spec { $0.scheduler = "nope" }).contains("nope"))
        XCTAssertEqual(refusal(JobSpec(request: GenerationRequest(prompt: "x"), model: "other")),
                       ServiceError.unknownModel("other", available: ["demo"]).description)
        XCTAssertEqual(service.health.queueDepth, 0)
    }

    func testUnknownAndExpiredJobs() async throws {
        let service = try makeService { $0.resultLifetime = 0.3 }
        let unknown = JobID(rawValue: "job_0")
        XCTAssertThrowsError(try service.job(unknown)) { XCTAssertEqual($0 as? ServiceError, .notFound(unknown)) }
        XCTAssertThrowsError(try service.cancel(unknown)) { XCTAssertEqual($0 as? ServiceError, .notFound(unknown)) }
        let s = try service.submit(spec())
        _ = try await service.waitUntilFinished(s.id)
        XCTAssertEqual(try service.job(s.id).status, .succeeded)
        try await Task.sleep(nanoseconds: 500_000_000)
        XCTAssertThrowsError(try service.job(s.id)) { XCTAssertEqual($0 as? ServiceError, .expired(s.id)) }
        XCTAssertThrowsError(try service.png(s.id, index: 0)) { XCTAssertEqual($0 as? ServiceError, .expired(s.id)) }
    }

    func testFinishedJobsAreCappedByCount() async throws {
        let service = try makeService { $0.maxFinishedJobs = 2 }
        var ids: [JobID] = []
        for _ in 0..<3 { ids.append(try await service.waitUntilFinished(service.submit(spec(steps: 1)).id).id) }
        XCTAssertThrowsError(try service.job(ids[0])) { XCTAssertEqual($0 as? ServiceError, .expired(ids[0])) }
        XCTAssertEqual(try service.job(ids[2]).status, .succeeded)
    }

    /// Arms an injected kernel failure on the runner thread at a job's second step.
    final class FailingObserver: GenerationServiceObserver, @unchecked Sendable {
        let lock = NSLock()
        var steps = 0
        var outcomes: [JobStatus] = []
        var armed = true
        func stepCompleted(seconds: Double) {
            lock.lock(); defer { lock.unlock() }
            steps += 1
            if armed && steps == 2 { KernelOverrides.armKernelFailure(after: 0); armed = false }
        }
        func jobFinished(_ snapshot: JobSnapshot) { lock.lock(); outcomes.append(snapshot.status); lock.unlock() }
    }

    func testAKernelFailureFailsOnlyItsJob() async throws {
        let observer = FailingObserver()
        let service = try makeService(observer: observer)
        let bad = try await service.waitUntilFinished(service.submit(spec(steps: 5)).id)
        XCTAssertEqual(bad.status, .failed)
        XCTAssertTrue(bad.error?.contains("injected kernel failure") ?? false, bad.error ?? "no error")
        XCTAssertEqual(bad.imageCount, 0)
        let good = try service.submit(spec(steps: 5))
        let goodDone = try await service.waitUntilFinished(good.id)
        XCTAssertEqual(goodDone.status, .succeeded)
        let pipeline = try DiffusionPipeline(folder: PipelineFixtures.demoFolder)
        var request = GenerationRequest(prompt: "a red circle on a blue background")
        (request.steps, request.seed) = (5, 7)
        XCTAssertEqual(try service.png(good.id, index: 0), try pipeline.generate(request).pngData(forImage: 0, model: pipeline.modelName))
        XCTAssertEqual(observer.outcomes, [.failed, .succeeded])
    }

    func testAModelThatCannotLoadFailsItsJobsWithTheReason() async throws {
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("deci-broken-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Data("{\"_class_name\": \"StableDiffusionPipeline\"}".utf8).write(to: broken.appendingPathComponent("model_index.json"))
        defer { try? FileManager.default.removeItem(at: broken) }
        let catalog = try ModelCatalog(entries: [.init(name: "demo", folder: PipelineFixtures.demoFolder), .init(name: "broken", folder: broken)])
        let service = GenerationService(catalog: catalog)
        defer { service.shutdown() }
        var sp = spec()
        sp.model = "broken"
        let done = try await service.waitUntilFinished(service.submit(sp).id)
        XCTAssertEqual(done.status, .failed)
        XCTAssertTrue(done.error?.contains("model broken: cannot load") ?? false, done.error ?? "")
        sp.model = nil
        let demoDone = try await service.waitUntilFinished(service.submit(sp).id)
        XCTAssertEqual(demoDone.status, .succeeded)
        XCTAssertEqual(service.health.models.map(\.name), ["demo", "broken"])
    }

    func testShutdownCancelsWaitingJobsAndRefusesNewOnes() async throws {
        let service = try makeService { $0.queueSize = 4 }
        let running = try service.submit(spec(steps: 1000))
        let queued = try service.submit(spec())
        try await waitFor { (try? service.job(running.id).status) == .running }
        service.shutdown()
        XCTAssertEqual(try service.job(queued.id).status, .cancelled)
        XCTAssertEqual(try service.job(running.id).status, .cancelled)
        XCTAssertThrowsError(try service.submit(spec())) { XCTAssertEqual($0 as? ServiceError, .shuttingDown) }
    }

    func testModelsDirectoryListsCheckpointFoldersOnly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deci-models-\(UUID().uuidString)")
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("notamodel"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: dir.appendingPathComponent("b-demo"), withDestinationURL: PipelineFixtures.demoFolder)
        try fm.createSymbolicLink(at: dir.appendingPathComponent("a-demo"), withDestinationURL: PipelineFixtures.demoFolder)
        defer { try? fm.removeItem(at: dir) }
        XCTAssertEqual(try ModelCatalog(modelsDirectory: dir).names, ["a-demo", "b-demo"])
        XCTAssertThrowsError(try ModelCatalog(modelsDirectory: dir.appendingPathComponent("notamodel"))) {
            XCTAssertTrue("\($0)".contains("no checkpoint folder"))
        }
    }

    /// Polls `condition` every 5 ms for up to 30 s.
    func waitFor(_ condition: () -> Bool, file: StaticString = #filePath, line: UInt = #line) async throws {
        let deadline = Date().addingTimeInterval(30)
        while !condition() {
            guard Date() < deadline else { return XCTFail("timed out", file: file, line: line) }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }
}
