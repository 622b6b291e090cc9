import XCTest

@testable import DeciServer

/// A1111 sampler / schedule names onto the engine's schedulers.
final class A1111SamplersTests: XCTestCase {
    func resolve(_ sampler: String?, _ schedule: String? = nil, fallback: String? = "DDIM") throws -> (String?, String, String) {
        let r = try A1111Samplers.resolve(sampler: sampler, samplerField: "sampler_name", schedule: schedule, checkpointDefault: fallback)
        return (r.engine, r.sampler, r.schedule)
    }

    func testNamesSchedulesAndLegacyCombinedNames() throws {
        XCTAssertTrue(try resolve("Euler a") == ("Euler a", "Euler a", "Automatic"))
        XCTAssertTrue(try resolve("k_euler_a") == ("Euler a", "Euler a", "Automatic"), "aliases")
        XCTAssertTrue(try resolve("euler A") == ("Euler a", "Euler a", "Automatic"), "case-insensitive")
        // DPM++ 2M's automatic schedule is Karras in A1111 1.9+, reported as Automatic.
        XCTAssertTrue(try resolve("DPM++ 2M") == ("DPM++ 2M Karras", "DPM++ 2M", "Automatic"))
        XCTAssertTrue(try resolve("DPM++ 2M", "Karras") == ("DPM++ 2M Karras", "DPM++ 2M", "Automatic"))
        XCTAssertTrue(try resolve("DPM++ 2M", "uniform") == ("DPM++ 2M", "DPM++ 2M", "Uniform"))
        XCTAssertTrue(try resolve("DPM++ 2M Karras") == ("DPM++ 2M Karras", "DPM++ 2M", "Automatic"), "legacy combined name")
        XCTAssertTrue(try resolve("LMS Karras") == ("LMS Karras", "LMS", "Karras"))
        XCTAssertTrue(try resolve("DPM++ 2M SDE", "karras") == ("DPM++ 2M SDE Karras", "DPM++ 2M SDE", "Karras"))
        XCTAssertTrue(try resolve("DDIM", "Automatic") == ("DDIM", "DDIM", "Automatic"))
    }

    func testNoSamplerRunsTheCheckpointsOwnScheduler() throws {
        XCTAssertTrue(try resolve(nil) == (nil, "DDIM", "Automatic"))
        XCTAssertTrue(try resolve("  ") == (nil, "DDIM", "Automatic"))
        XCTAssertTrue(try resolve(nil, fallback: nil) == (nil, "Automatic", "Automatic"))
        XCTAssertEqual(A1111Samplers.name(forClass: "DDIMScheduler"), "DDIM")
        XCTAssertNil(A1111Samplers.name(forClass: "DPMSolverMultistepScheduler"), "its config may carry Karras; run it as the checkpoint's own")
    }

    func testWhatTheEngineLacksIsRefusedNamingTheField() {
        XCTAssertThrowsError(try resolve("DPM++ 3M SDE")) {
            let e = $0 as? FieldError
            XCTAssertEqual(e?.field, "sampler_name")
            XCTAssertTrue(e?.message.contains("Euler a") ?? false, "lists what there is: \(String(describing: e))")
        }
        XCTAssertThrowsError(try resolve("DPM++ 2M SDE")) {
            XCTAssertEqual(($0 as? FieldError)?.field, "scheduler", "its automatic schedule is exponential")
        }
        XCTAssertThrowsError(try resolve("Euler", "Karras")) { XCTAssertEqual(($0 as? FieldError)?.field, "scheduler") }
        XCTAssertThrowsError(try resolve("Euler", "beta")) { XCTAssertEqual(($0 as? FieldError)?.field, "scheduler") }
    }

    func testEveryOfferedPairParsesAsAnEngineScheduler() throws {
        for sampler in A1111Samplers.samplers {
            for (_, engine) in sampler.engine {
                XCTAssertNoThrow(try DeciSchedulersProbe.parse(engine), "\(sampler.name): \(engine)")
            }
        }
    }
}

import DeciSchedulers

enum DeciSchedulersProbe {
    static func parse(_ name: String) throws { _ = try SchedulerName(parsing: name) }
}
