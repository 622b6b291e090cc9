import DeciRandom
import DeciSchedulers
import Foundation
import TestSupport

// Fixture access for the scheduler tests; files come from tools/make_scheduler_fixtures.py.

struct CommonFixture: Decodable {
    var shape: [Int]
    var ddim_eta: Float
    var init_noise: [Float]
    var base: [Float]
    var original: [Float]
    var noise_pool: [Float]
    var alphas_cumprod: [String: [Float]]
}

struct SchedulerCase: Decodable {
    var config: String
    var prediction_type: String
    var steps: Int
    var strength: Double?
    var error: String?
    var init_noise_sigma: Float?
    var noised: [Float]?
    var timesteps: [Double]?
    var sigmas: [Float?]?
    var finite: Bool?
    var final: [Float]?
    var final_pred_original: [Float]?
    var noise_draws: [Int]?
    // The same run with exactly rounded sqrt/exp/log (see tools/make_scheduler_fixtures.py), where
    // it differs from the plain one.
    var init_noise_sigma_cr: Float?
    var noised_cr: [Float]?
    var timesteps_cr: [Double]?
    var sigmas_cr: [Float?]?
    var final_cr: [Float]?
    var final_pred_original_cr: [Float]?

    var label: String {
        "\(config)/\(prediction_type)/\(steps) steps" + (strength.map { "/strength \($0)" } ?? "")
    }
}

struct SchedulerFixture: Decodable {
    var scheduler: String
    var cases: [SchedulerCase]
}

struct GuidanceFixture: Decodable {
    var shape: [Int]
    var scale: Double
    var phi: Double
    var uncond: [Float]
    var cond: [Float]
    var cfg: [Float]
    var rescaled: [Float]
}

struct ThresholdingFixture: Decodable {
    var steps: Int
    var sample_max_value: Double
    var ratio: Double
    var scale_sample: Float
    var scale_output: Float
    var prev_sample: [Float]
    var pred_original: [Float]
}

enum Fixtures {
    static func load<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let data = try Data(contentsOf: FixturePaths.url("schedulers/\(name)"))
        return try JSONDecoder().decode(T.self, from: data)
    }

    static let common: CommonFixture? = try? load(CommonFixture.self, "common.json")

    static func config(_ key: String) throws -> SchedulerConfig {
        let file = key == "deci" ? "decidiffusion_scheduler_config.json" : "sd15_scheduler_config.json"
        return try SchedulerConfig.load(contentsOf: FixturePaths.url("schedulers/\(file)"))
    }
}

/// Replays the fixture's noise pool in consecutive wrapping slices, as the generator's stand-in for
/// `randn_tensor` hands them out, and records each draw's size.
struct ReplayNoise: RandomSource {
    let pool: [Float]
    var offset = 0
    var draws: [Int] = []

    init(pool: [Float]) { self.pool = pool }

    mutating func normal(count: Int) -> [Float] {
        let out = (0..<count).map { pool[(offset + $0) % pool.count] }
        offset += count
        draws.append(count)
        return out
    }
}

/// The fixtures' fake denoiser: x * a_i + base * b_i with per-call float32 coefficients.
func fakeModel(_ x: [Float], call i: Int, base: [Float]) -> [Float] {
    let a = Float(0.9) - Float(i % 7) * Float(0.05)
    let b = Float(0.2) + Float(i % 5) * Float(0.1)
    return zip(x, base).map { (v, w) in v * a + w * b }
}
