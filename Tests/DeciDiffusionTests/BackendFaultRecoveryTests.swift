import DeciDiffusion
import DeciTensor
import Foundation
import Testing
import TestSupport

/// A long-lived process survives kernel and allocation failures: `generate` throws a
/// `BackendFault` naming the op, and the next `generate` on the same pipeline gives exactly the
/// image a fresh pipeline gives. Serialized: the injected failures are per thread, but each test
/// compares against reference images made on the same pipeline.
@Suite("Backend fault recovery", .serialized)
struct BackendFaultRecoveryTests {
    static let demoFolder = PipelineFixtures.demoFolder

    static func request(size: Int = 64, steps: Int = 4, seed: UInt64 = 3) -> GenerationRequest {
        var r = GenerationRequest(prompt: "a red circle on a blue background")
        r.width = size
        r.height = size
        r.steps = steps
        r.seed = seed
        return r
    }

    /// The images of a fresh pipeline for `request`.
    static func reference(_ request: GenerationRequest) throws -> GenerationResult {
        try DiffusionPipeline(folder: demoFolder).generate(request)
    }

    /// Runs `failing` (a generation with a failure injected; `progress` counts its steps) on a
    /// pipeline, hands the BackendFault it must throw and the steps done to `check`, then checks the
    /// same pipeline's next run equals a fresh pipeline's bit for bit.
    func expectRecovery(_ what: String,
                        failing: (DiffusionPipeline, GenerationRequest, _ progress: @escaping (StepProgress) -> Bool) throws -> GenerationResult,
                        check: (BackendFault, _ steps: Int) -> Void) throws {
        defer { KernelOverrides.clearFailureInjection() }
        let request = Self.request()
        let expected = try Self.reference(request)
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        final class Steps: @unchecked Sendable { var seen = 0 }
        let steps = Steps()
        do {
            _ = try failing(pipeline, request) { p in steps.seen = p.step; return true }
            Issue.record("generate succeeded despite the injected \(what)")
        } catch let fault as BackendFault {
            check(fault, steps.seen)
        }
        #expect(!Backend.hasPendingFault)
        let again = try pipeline.generate(request)
        #expect(again.images == expected.images, "the run after the \(what) differs from a fresh pipeline's")
        #expect(again.pixels == expected.pixels)
    }

    @Test("A kernel failure mid-denoise throws a BackendFault naming the op; the next run equals a fresh pipeline's")
    func kernelFailureMidDenoise() throws {
        try expectRecovery("kernel failure", failing: { pipeline, request, progress in
            try pipeline.generate(request) { p in
                // Arm during step 2's callback: the failure hits a few kernels into step 3.
                if p.step == 2 { KernelOverrides.armKernelFailure(after: 3) }
                return progress(p)
            }
        }, check: { fault, steps in
            #expect(["conv", "linear", "attention", "upsample+conv"].contains { fault.op.hasPrefix($0) }, "op: \(fault.op)")
            #expect(fault.message.contains("injected kernel failure"), "\(fault)")
            #expect(fault.description.contains(fault.op))
            #expect(steps == 2, "the run went on to step \(steps) after the fault")
        })
    }

    @Test("An allocation failure in the VAE decoder throws a BackendFault; the next run equals a fresh pipeline's")
    func allocationFailure() throws {
        // The demo decoder's 32-channel 64x64 maps are 512 KiB; nothing before the decoder comes near.
        try expectRecovery("allocation failure", failing: { pipeline, request, progress in
            try KernelOverrides.withAllocationFailure(over: 400 << 10) { try pipeline.generate(request, progress: progress) }
        }, check: { fault, steps in
            #expect(fault.op == "allocate", "\(fault)")
            #expect(fault.message.hasPrefix("out of memory allocating 524288 bytes for a tensor of shape [1, 64, 64, 32]"), "\(fault)")
            #expect(steps == 4, "the failure should come after denoising, in the decoder")
        })
    }

    @Test("Two different-size jobs back to back on one pipeline each equal a fresh pipeline's output")
    func differentSizesBackToBack() throws {
        let small = Self.request(size: 64, seed: 5), large = Self.request(size: 128, steps: 3, seed: 6)
        let expectedSmall = try Self.reference(small), expectedLarge = try Self.reference(large)
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        for (request, expected) in [(large, expectedLarge), (small, expectedSmall), (large, expectedLarge)] {
            let result = try pipeline.generate(request)
            #expect(result.images == expected.images, "\(request.width ?? 0)px job differs from a fresh pipeline's")
        }
    }
}
