import DeciRandom
@testable import DeciSchedulers
import Foundation
import TestSupport
import Testing

struct VariantCase: Decodable {
    var scheduler: String
    var config: String
    var steps: Int
    var timesteps: [Double]?
    var timesteps_cr: [Double]?
    var sigmas: [Float?]?
    var sigmas_cr: [Float?]?
    var init_noise_sigma: Float?
    var init_noise_sigma_cr: Float?
    var finite: Bool?
    var final: [Float]?
    var final_cr: [Float]?
    var noise_draws: [Int]?
}

/// Options outside the main matrix (solver orders and types, Karras with other spacings, clipping,
/// thresholding, variance types, trained betas, PRK warm-up, LCM settings), each given to the
/// scheduler as config keys merged into a checkpoint config, then run for a whole loop.
@Suite struct SchedulerVariantTests {
    @Test func variantsMatchDiffusers() throws {
        let common = try #require(Fixtures.common)
        let url = FixturePaths.url("schedulers/variants.json")
        let data = try Data(contentsOf: url)
        let cases = try JSONDecoder().decode([String: [VariantCase]].self, from: data)["cases"] ?? []
        let raw = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let rawCases = try #require(raw["cases"] as? [[String: Any]])
        #expect(cases.count == rawCases.count && cases.count >= 30)
        let perImage = common.shape.dropFirst().reduce(1, *)

        for (c, rc) in zip(cases, rawCases) {
            let overrides = try #require(rc["overrides"] as? [String: Any])
            let what = "\(c.scheduler) \(c.config) \(overrides.keys.sorted()) \(c.steps) steps"
            let baseFile = c.config == "deci" ? "decidiffusion_scheduler_config.json" : "sd15_scheduler_config.json"
            var dict = try #require(try JSONSerialization.jsonObject(
                with: Data(contentsOf: FixturePaths.url("schedulers/\(baseFile)"))) as? [String: Any])
            dict.merge(overrides) { _, new in new }
            let config = try SchedulerConfig.decode(try JSONSerialization.data(withJSONObject: dict))
            // The class only: the overrides, not the name's implied settings, choose the variant.
            var s = try DeciSchedulers.makeScheduler(kind: try SchedulerName(parsing: c.scheduler).kind, config: config)
            s.elementsPerImage = perImage

            let timesteps = try s.prepareTimesteps(steps: c.steps)
            let exactT = try #require(c.timesteps_cr ?? c.timesteps)
            if exactT.allSatisfy({ $0 == $0.rounded() }) {
                #expect(timesteps.map(Double.init) == exactT, "\(what) timesteps \(timesteps) vs \(exactT)")
            } else {
                #expect(timesteps.count == exactT.count, "\(what) timestep count")
                for (g, w) in zip(timesteps, exactT) {
                    #expect(abs(Double(g) - w) <= 1e-4 * max(1, w), "\(what) timestep \(g) vs \(w)")
                }
            }
            if let plain = c.sigmas {
                let cmp = compare(try #require(s.sigmas), (c.sigmas_cr ?? plain).map { $0 ?? .nan })
                #expect(cmp.within(relative: 1e-6), "\(what) sigmas: \(cmp)")
            }
            let want = try #require(c.init_noise_sigma_cr ?? c.init_noise_sigma)
            #expect(s.initNoiseSigma == want, "\(what) init_noise_sigma \(s.initNoiseSigma) vs \(want)")

            let sigma = s.initNoiseSigma
            var x = common.init_noise.map { $0 * sigma }
            var rng = ReplayNoise(pool: common.noise_pool)
            for (i, t) in timesteps.enumerated() {
                let input = try s.scaleModelInput(x, timestep: t)
                x = try s.step(modelOutput: fakeModel(input, call: i, base: common.base), timestep: t, sample: x, noise: &rng).prevSample
            }
            #expect(rng.draws == (c.noise_draws ?? []), "\(what) noise draws")
            #expect(x.allSatisfy(\.isFinite) == (c.finite ?? true), "\(what) finiteness")
            let plain = try #require(c.final)
            SchedulerParityTests.check(x, plain: plain, exact: c.final_cr, tolerance: 1e-5, "\(what) final sample")
        }
    }
}
