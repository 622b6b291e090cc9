import DeciRandom
import DeciSchedulers
import Testing
import TestSupport

/// `ScheduleSettings.predictedOriginalSample` (the x0 estimate the pipeline derives for previews
/// of schedulers that report none) against DDIM's own `pred_original_sample`, which uses the same
/// alphas: they must agree bit for bit at every step, for epsilon and v prediction.
@Suite("Predicted original sample")
struct PredictedOriginalTests {
    @Test(arguments: ["sd15", "deci"])
    func matchesDDIM(_ key: String) throws {
        let config = try Fixtures.config(key)
        var ddim = try DDIMScheduler(config: config)
        let timesteps = try ddim.prepareTimesteps(steps: 5)
        var source = SplitMix(seed: 3)
        var sample = (0..<32).map { _ in source.uniform() }
        var rng = ReplayNoise(pool: [0])
        for t in timesteps {
            let output = (0..<32).map { _ in source.uniform() }
            let step = try ddim.step(modelOutput: output, timestep: t, sample: sample, noise: &rng)
            let derived = ddim.settings.predictedOriginalSample(modelOutput: output, sample: sample, timestep: t)
            #expect(derived == step.predOriginalSample, "\(key) t=\(t)")
            sample = step.prevSample
        }
        // A size mismatch gives the sample back rather than trapping.
        #expect(ddim.settings.predictedOriginalSample(modelOutput: [1], sample: [2, 3], timestep: 10) == [2, 3])
    }
}
