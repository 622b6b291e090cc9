import DeciRandom
@testable import DeciSchedulers
import Foundation
import TestSupport
import Testing

/// Config handling, names, DeciDiffusion's own schedule, guidance and the error paths.
@Suite struct SchedulerBehaviourTests {
    @Test func decidiffusionConfigDecodes() throws {
        let c = try Fixtures.config("deci")
        #expect(c.className == "DDIMScheduler")
        #expect(c.betaSchedule == .squaredcosCapV2)
        #expect(c.predictionType == .vPrediction)
        #expect(c.rescaleBetasZeroSnr == true)
        #expect(c.timestepSpacing == .trailing)
        #expect(c.stepsOffset == 1)
        #expect(c.setAlphaToOne == false)
        #expect(c.clipSample == false)
        #expect(c.trainedBetas == nil)
        let s = try makeScheduler(config: c)
        #expect(s is DDIMScheduler)
    }

    /// The spec's 30-step DeciDiffusion schedule, written out.
    @Test func decidiffusionThirtyStepTimesteps() throws {
        var s = try makeScheduler(config: try Fixtures.config("deci"))
        let t = try s.prepareTimesteps(steps: 30)
        let want: [Float] = [999, 966, 932, 899, 866, 832, 799, 766, 732, 699, 666, 632, 599, 566, 532, 499,
                             466, 432, 399, 366, 332, 299, 266, 232, 199, 166, 132, 99, 66, 32]
        #expect(t == want)
        // DDIM's previous timestep for the last one (32 - 1000/30 < 0) is final_alpha_cumprod =
        // alphas_cumprod[0] since set_alpha_to_one is false; alpha_bar(999) is exactly 0.
        let ddim = try DDIMScheduler(config: try Fixtures.config("deci"))
        #expect(ddim.schedule.alphasCumprod[999] == 0)
        #expect(ddim.initNoiseSigma == 1)
    }

    @Test func unknownKeysAreIgnoredAndKnownOnesHonoured() throws {
        let json = """
            {"_class_name": "EulerDiscreteScheduler", "some_future_key": [1, 2], "nested": {"a": 1},
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
             "timestep_spacing": "leading", "steps_offset": 1, "use_karras_sigmas": true,
             "lambda_min_clipped": "-inf"}
            """
        let c = try SchedulerConfig.decode(Data(json.utf8))
        #expect(c.useKarrasSigmas == true)
        #expect(c.lambdaMinClipped == -.infinity)
        var s = try makeScheduler(config: c)
        #expect(s is EulerDiscreteScheduler)
        let t = try s.prepareTimesteps(steps: 10)
        #expect(t.count == 10)
        // Karras sigmas between the interpolated sigmas of the first and last leading timesteps,
        // timesteps mapped back through log-sigma; values printed by diffusers 0.42.1.
        let sigmas = try #require(s.sigmas)
        let wantSigmas: [Float] = [8.390686988830566, 5.477698802947998, 3.478407144546509, 2.1403043270111084,
                                   1.2701091766357422, 0.7226703763008118, 0.3913528323173523, 0.19980022311210632,
                                   0.09496716409921646, 0.04131447896361351, 0.0]
        let cmp = compare(sigmas, wantSigmas)
        #expect(cmp.within(relative: 1e-6), "Karras sigmas: \(cmp)")
        let wantT: [Float] = [901.0, 815.0175170898438, 710.50048828125, 581.6551513671875, 426.5304260253906,
                              260.2430114746094, 121.14097595214844, 40.272430419921875, 9.30146598815918,
                              1.0000001192092896]
        for (got, want) in zip(t, wantT) { #expect(abs(got - want) <= 1e-3 * max(1, want), "timestep \(got) vs \(want)") }
    }

    @Test func unknownEnumStringIsAClearError() throws {
        let json = #"{"beta_schedule": "cosine_v9"}"#
        #expect(throws: SchedulerError.invalidConfigValue(
            key: "beta_schedule", value: "cosine_v9", allowed: BetaSchedule.allCases.map(\.rawValue))) {
            _ = try SchedulerConfig.decode(Data(json.utf8))
        }
        do {
            _ = try SchedulerConfig.decode(Data(#"{"prediction_type": "flow"}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("prediction_type"))
            #expect(error.description.contains("flow"))
        }
        #expect(throws: SchedulerError.self) {
            _ = try SchedulerConfig.decode(Data(#"{"num_train_timesteps": "many"}"#.utf8))
        }
    }

    @Test func namesMapToSchedulers() throws {
        let cases: [(String, SchedulerKind, Bool?, DPMAlgorithm?)] = [
            ("ddim", .ddim, nil, nil), ("PLMS", .pndm, nil, nil), ("Euler a", .eulerAncestral, nil, nil),
            ("euler_a", .eulerAncestral, nil, nil), ("Euler", .euler, nil, nil), ("Heun", .heun, nil, nil),
            ("LMS Karras", .lms, true, nil), ("DPM++ 2M", .dpmSolverMultistep, nil, .dpmSolverPlusPlus),
            ("DPM++ 2M Karras", .dpmSolverMultistep, true, .dpmSolverPlusPlus),
            ("dpm++2m_sde", .dpmSolverMultistep, nil, .sdeDPMSolverPlusPlus),
            ("DPM++ 2M SDE Karras", .dpmSolverMultistep, true, .sdeDPMSolverPlusPlus),
            ("UniPC", .uniPC, nil, nil), ("LCM", .lcm, nil, nil),
            ("DPMSolverMultistepScheduler", .dpmSolverMultistep, nil, nil),
        ]
        for (name, kind, karras, algorithm) in cases {
            let n = try SchedulerName(parsing: name)
            #expect(n.kind == kind, "\(name)")
            #expect(n.useKarrasSigmas == karras, "\(name)")
            #expect(n.algorithm == algorithm, "\(name)")
        }
        #expect(throws: SchedulerError.unknownSchedulerName("DPM++ 9M")) { _ = try SchedulerName(parsing: "DPM++ 9M") }
    }

    /// Choosing a scheduler by name keeps the checkpoint's schedule and parameterisation.
    @Test func nameOverCheckpointConfigKeepsScheduleAndPrediction() throws {
        let deci = try Fixtures.config("deci")
        let s = try makeScheduler(named: "DPM++ 2M Karras", config: deci)
        let dpm = try #require(s as? DPMSolverMultistepScheduler)
        #expect(dpm.sigmaOptions.useKarrasSigmas)
        #expect(dpm.predictionType == .vPrediction)
        #expect(dpm.timestepSpacing == .trailing)
        // Zero-SNR rescaling is honoured, with the 2^-24 floor the sigma schedulers use.
        #expect(dpm.schedule.alphasCumprod.last == 0x1p-24)
        let euler = try #require(try makeScheduler(named: "euler", config: deci) as? EulerDiscreteScheduler)
        #expect(euler.schedule.betas == dpm.schedule.betas)
    }

    @Test func misuseIsReported() throws {
        let deci = try Fixtures.config("deci")
        var rng = ReplayNoise(pool: [0.5])
        var ddim = try DDIMScheduler(config: deci)
        #expect(throws: SchedulerError.timestepsNotSet(scheduler: "DDIMScheduler")) {
            _ = try ddim.step(modelOutput: [0], timestep: 999, sample: [0], noise: &rng)
        }
        try ddim.setTimesteps(10)
        #expect(throws: SchedulerError.sizeMismatch(parameter: "modelOutput", expected: 2, actual: 1)) {
            _ = try ddim.step(modelOutput: [0], timestep: 999, sample: [0, 0], noise: &rng)
        }
        #expect(throws: SchedulerError.self) { try ddim.setTimesteps(0) }
        #expect(throws: SchedulerError.invalidStrength(1.5)) { _ = try ddim.prepareTimesteps(steps: 10, strength: 1.5) }
        var euler = try EulerDiscreteScheduler(config: deci)
        try euler.setTimesteps(10)
        #expect(throws: SchedulerError.timestepNotInSchedule(scheduler: "EulerDiscreteScheduler", timestep: 123.5)) {
            _ = try euler.scaleModelInput([1], timestep: 123.5)
        }
        var lcm = try LCMScheduler(config: deci)
        #expect(throws: SchedulerError.self) { try lcm.setTimesteps(51) }
        // Options diffusers has but this port does not implement are refused by name.
        var flow = deci
        flow.useFlowSigmas = true
        #expect(throws: SchedulerError.unsupportedOption(scheduler: "UniPCMultistepScheduler", option: "use_flow_sigmas")) {
            _ = try makeScheduler(kind: .uniPC, config: flow)
        }
    }

    /// Image-to-image cuts the schedule like diffusers' get_timesteps, in units of `order`.
    @Test func img2imgTruncation() throws {
        let sd = try Fixtures.config("sd15")
        var heun = try makeScheduler(named: "heun", config: sd)
        let all = try heun.prepareTimesteps(steps: 10)
        let cut = try heun.prepareTimesteps(steps: 10, strength: 0.5)
        #expect(all.count == 19)
        #expect(Array(all.suffix(cut.count)) == cut)
        #expect(cut.count == 19 - 5 * 2)
        var ddim = try makeScheduler(named: "ddim", config: sd)
        #expect(try ddim.prepareTimesteps(steps: 10, strength: 0.0) == [])
        #expect(try ddim.prepareTimesteps(steps: 10, strength: 1.0).count == 10)
    }
}

@Suite struct GuidanceTests {
    @Test func classifierFreeGuidanceAndRescaleMatchTorch() throws {
        let g = try Fixtures.load(GuidanceFixture.self, "guidance.json")
        let perImage = g.shape.dropFirst().reduce(1, *)
        let cfg = try classifierFreeGuidance(uncond: g.uncond, cond: g.cond, scale: g.scale)
        let c1 = compare(cfg, g.cfg)
        #expect(c1.within(relative: 1e-7), "CFG: \(c1)")
        let rescaled = try rescaleGuidance(cfg, cond: g.cond, phi: g.phi, elementsPerImage: perImage)
        let c2 = compare(rescaled, g.rescaled)
        #expect(c2.within(relative: 1e-6), "guidance rescale: \(c2)")
        let combined = try applyGuidance(uncond: g.uncond, cond: g.cond, scale: g.scale, rescale: g.phi, elementsPerImage: perImage)
        #expect(combined == rescaled)
        // Rescaling is per image: with both images treated as one the result must differ.
        let pooled = try rescaleGuidance(cfg, cond: g.cond, phi: g.phi, elementsPerImage: g.cond.count)
        #expect(!compare(pooled, g.rescaled).within(relative: 1e-4))
        print("guidance: CFG relative difference \(c1.relative), rescale \(c2.relative)")
    }

    @Test func rescaleRejectsBadImageSize() throws {
        #expect(throws: SchedulerError.self) { _ = try rescaleGuidance([1, 2, 3], cond: [1, 2, 3], phi: 0.7, elementsPerImage: 2) }
    }

    @Test func thresholdingMatchesDiffusersPerImage() throws {
        let common = try #require(Fixtures.common)
        let f = try Fixtures.load(ThresholdingFixture.self, "thresholding.json")
        var config = try Fixtures.config("sd15")
        config.thresholding = true
        config.sampleMaxValue = f.sample_max_value
        config.dynamicThresholdingRatio = f.ratio
        var s = try DDIMScheduler(config: config)
        s.elementsPerImage = common.shape.dropFirst().reduce(1, *)
        let t = try s.prepareTimesteps(steps: f.steps)
        let x = common.init_noise.map { $0 * f.scale_sample }
        let out = fakeModel(x, call: 0, base: common.base).map { $0 * f.scale_output }
        var rng = ReplayNoise(pool: [0])
        let r = try s.step(modelOutput: out, timestep: t[0], sample: x, noise: &rng)
        let p = compare(try #require(r.predOriginalSample), f.pred_original)
        #expect(p.within(relative: 1e-6), "thresholded x0: \(p)")
        let c = compare(r.prevSample, f.prev_sample)
        #expect(c.within(relative: 1e-5), "prev sample: \(c)")
        #expect(rng.draws.isEmpty)
    }
}
