import DeciRandom
@testable import DeciSchedulers
import Foundation
import TestSupport
import Testing

/// Every scheduler, both parameterisations, DeciDiffusion's and SD 1.5's configs, 1/2/10/30/50 steps
/// plus two image-to-image starts: schedules and whole denoising trajectories against diffusers 0.42.
@Suite struct SchedulerParityTests {
    static let names = ["ddim", "ddim_eta", "pndm", "ddpm", "euler", "euler_a", "heun", "lms", "dpm++2m",
                        "dpm++2m_karras", "dpm++2m_sde", "dpm++2m_sde_karras", "unipc", "lcm"]

    /// Trajectory tolerance (max |diff| / max |reference|), as the issue states it.
    static let trajectoryTolerance = 1e-5
    /// Sigma schedules: float32 values that torch derives with its own (1-ulp different) sqrt.
    static let sigmaTolerance = 1e-6

    static func makeScheduler(_ name: String, config: SchedulerConfig, eta: Float) throws -> any Scheduler {
        if name == "ddim_eta" {
            var d = try DDIMScheduler(config: config)
            d.eta = eta
            return d
        }
        return try DeciSchedulers.makeScheduler(named: name, config: config)
    }

    /// Checks `got` against the exactly rounded reference to `tolerance`, and against plain diffusers
    /// to `tolerance` or twice the distance between the two references, whichever is larger: no port
    /// can be closer to diffusers than diffusers is to itself under torch's inexact float32 maths.
    /// Returns the relative difference to plain diffusers.
    @discardableResult
    static func check(_ got: [Float], plain: [Float], exact: [Float]?, tolerance: Double, _ what: String) -> Double {
        let ref = exact ?? plain
        let cmpExact = compare(got, ref)
        #expect(cmpExact.within(relative: tolerance), "\(what) vs exactly rounded diffusers: \(cmpExact)")
        let spread = exact.map { compare(plain, $0).relative } ?? 0
        let cmpPlain = compare(got, plain)
        #expect(cmpPlain.within(relative: max(tolerance, 2 * spread)),
                "\(what) vs diffusers: \(cmpPlain) (diffusers' own rounding spread \(spread))")
        return cmpPlain.relative
    }

    @Test(arguments: names)
    func matchesDiffusers(name: String) throws {
        let common = try #require(Fixtures.common)
        let fixture = try Fixtures.load(SchedulerFixture.self, "\(name).json")
        #expect(fixture.cases.count == 28)
        var worstExact = 0.0, worstPlain = 0.0
        for c in fixture.cases {
            let what = "\(name) \(c.label)"
            var config = try Fixtures.config(c.config)
            config.predictionType = PredictionType(rawValue: c.prediction_type)
            var s = try Self.makeScheduler(name, config: config, eta: common.ddim_eta)

            if let error = c.error {
                #expect(throws: SchedulerError.self, "\(what): diffusers raised \(error)") {
                    if let strength = c.strength { _ = try s.prepareTimesteps(steps: c.steps, strength: strength) }
                    else { try s.prepareTimesteps(steps: c.steps) }
                }
                continue
            }
            let timesteps: [Float]
            var x: [Float]
            if let strength = c.strength {
                timesteps = try s.prepareTimesteps(steps: c.steps, strength: strength)
                x = try s.addNoise(original: common.original, noise: common.init_noise, timestep: timesteps[0])
                Self.check(x, plain: try #require(c.noised), exact: c.noised_cr, tolerance: 1e-6, "\(what) add_noise")
            } else {
                timesteps = try s.prepareTimesteps(steps: c.steps)
                let want = try #require(c.init_noise_sigma_cr ?? c.init_noise_sigma)
                #expect(s.initNoiseSigma == want, "\(what) init_noise_sigma \(s.initNoiseSigma) vs \(want)")
                let sigma = s.initNoiseSigma
                x = common.init_noise.map { $0 * sigma }
            }

            // Timesteps: identical to the exactly rounded run; the plain run differs only where
            // that one does (Karras timesteps on the zero-SNR schedule sit on rounding boundaries).
            let plainT = try #require(c.timesteps)
            let exactT = c.timesteps_cr ?? plainT
            #expect(timesteps.map(Double.init) == exactT, "\(what) timesteps \(timesteps) vs \(exactT)")
            #expect(timesteps.count == plainT.count, "\(what) timestep count vs diffusers")
            for k in 0..<min(timesteps.count, plainT.count) where exactT[k] == plainT[k] {
                #expect(Double(timesteps[k]) == plainT[k], "\(what) timestep \(k): \(timesteps[k]) vs \(plainT[k])")
            }
            if let plainSigmas = c.sigmas {
                let got = try #require(s.sigmas, "\(name) has sigmas in diffusers")
                let exact = (c.sigmas_cr ?? plainSigmas).map { $0 ?? .nan }
                let cmp = compare(got, exact)
                #expect(cmp.within(relative: Self.sigmaTolerance), "\(what) sigmas: \(cmp)")
            }

            var rng = ReplayNoise(pool: common.noise_pool)
            var lastPred: [Float]?
            for (i, t) in timesteps.enumerated() {
                let input = try s.scaleModelInput(x, timestep: t)
                let out = fakeModel(input, call: i, base: common.base)
                let r = try s.step(modelOutput: out, timestep: t, sample: x, noise: &rng)
                x = r.prevSample
                lastPred = r.predOriginalSample
            }
            #expect(rng.draws == (c.noise_draws ?? []), "\(what) noise draws \(rng.draws) vs \(c.noise_draws ?? [])")
            let finite = x.allSatisfy(\.isFinite)
            #expect(finite == (c.finite ?? true), "\(what): finite \(finite), diffusers \(c.finite ?? true)")
            guard let want = c.final else { continue }
            worstExact = max(worstExact, compare(x, c.final_cr ?? want).relative)
            worstPlain = max(worstPlain, Self.check(x, plain: want, exact: c.final_cr,
                                                     tolerance: Self.trajectoryTolerance, "\(what) final sample"))
            if let wantPred = c.final_pred_original {
                let got = try #require(lastPred, "\(name) returns predOriginalSample")
                Self.check(got, plain: wantPred, exact: c.final_pred_original_cr,
                           tolerance: Self.trajectoryTolerance, "\(what) pred_original")
            }
        }
        print("parity \(name): worst final relative difference \(worstExact) (exactly rounded diffusers), \(worstPlain) (diffusers)")
    }

    @Test func alphasCumprodMatchTorch() throws {
        let common = try #require(Fixtures.common)
        // Bit-identical to torch where no square root is involved, and to the exactly rounded run for
        // zero-SNR rescaling; torch's own sqrt leaves the plain zero-SNR schedule an ulp away.
        let cases: [(String, SchedulerConfig, Double)] = [
            ("deci_cr", try Fixtures.config("deci"), 0), ("deci", try Fixtures.config("deci"), 1e-6),
            ("sd15", try Fixtures.config("sd15"), 0), ("linear", SchedulerConfig(), 0),
        ]
        for (key, config, tolerance) in cases {
            let s = try DDIMScheduler(config: config)
            let cmp = compare(s.schedule.alphasCumprod, try #require(common.alphas_cumprod[key]))
            #expect(cmp.within(relative: tolerance), "\(key) alphas_cumprod: \(cmp)")
            print("alphas_cumprod \(key): relative difference \(cmp.relative)")
        }
        // Zero terminal SNR: the last alpha_bar is exactly 0 (and 2^-24 in the sigma schedulers).
        let deci = try Fixtures.config("deci")
        #expect(try DDIMScheduler(config: deci).schedule.alphasCumprod.last == 0)
        let euler = try EulerDiscreteScheduler(config: deci)
        #expect(euler.schedule.alphasCumprod.last == 0x1p-24)
    }
}
