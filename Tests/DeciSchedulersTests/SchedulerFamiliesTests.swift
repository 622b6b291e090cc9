import DeciRandom
@testable import DeciSchedulers
import Testing

/// What the scheduler families share (SchedulerFamilies.swift): one step-count check, one noise
/// schedule construction, the input scaling and noising of each family.
@Suite struct SchedulerFamiliesTests {
    static let trainStepChecked = SchedulerKind.allCases.filter { $0 != .lcm }

    @Test(arguments: trainStepChecked)
    func stepCountOutsideTheTrainingRangeIsRefused(kind: SchedulerKind) throws {
        var config = SchedulerConfig()
        config.numTrainTimesteps = 500
        var s = try makeScheduler(kind: kind, config: config)
        #expect(s.className == kind.className)
        for steps in [0, -3, 501] {
            #expect(throws: SchedulerError.invalidStepCount(scheduler: kind.className, steps: steps,
                                                            reason: "must be within 1...500")) {
                try s.setTimesteps(steps)
            }
        }
        try s.setTimesteps(500)
    }

    @Test func lcmChecksAgainstOriginalInferenceSteps() throws {
        var lcm = try LCMScheduler(config: SchedulerConfig())
        #expect(throws: SchedulerError.invalidStepCount(
            scheduler: "LCMScheduler", steps: 51, reason: "must be within 1...50 (original_inference_steps)")) {
            try lcm.setTimesteps(51)
        }
    }

    /// Class defaults that differ from DDPM's reach the schedule; PNDM, Heun and LMS ignore zero-SNR.
    @Test func scheduleDefaultsPerClass() throws {
        let plain = try NoiseSchedule(numTrainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012, schedule: .linear,
                                      trainedBetas: nil, rescaleZeroSNR: false, zeroSNRFloor: false)
        #expect(try HeunDiscreteScheduler(config: SchedulerConfig()).schedule == plain)
        let scaled = try NoiseSchedule(numTrainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012, schedule: .scaledLinear,
                                       trainedBetas: nil, rescaleZeroSNR: false, zeroSNRFloor: false)
        #expect(try LCMScheduler(config: SchedulerConfig()).schedule == scaled)
        var zeroSNR = SchedulerConfig()
        zeroSNR.rescaleBetasZeroSnr = true
        #expect(try PNDMScheduler(config: zeroSNR).schedule == PNDMScheduler(config: SchedulerConfig()).schedule)
        #expect(try LMSDiscreteScheduler(config: zeroSNR).schedule.alphasCumprod.last != 0)
        #expect(try DDPMScheduler(config: zeroSNR).schedule.alphasCumprod.last == 0)
        #expect(try UniPCMultistepScheduler(config: zeroSNR).schedule.alphasCumprod.last == 0x1p-24)
    }

    @Test func familyDefaults() throws {
        let config = SchedulerConfig()
        for kind in [SchedulerKind.ddim, .ddpm, .pndm, .lcm] {
            var s = try makeScheduler(kind: kind, config: config)
            try s.prepareTimesteps(steps: 10)
            #expect(s.sigmas == nil, "\(kind)")
            #expect(s.initNoiseSigma == 1, "\(kind)")
            #expect(try s.scaleModelInput([1, -2], timestep: s.timesteps[0]) == [1, -2], "\(kind)")
        }
        for kind in [SchedulerKind.dpmSolverMultistep, .uniPC] {
            var s = try makeScheduler(kind: kind, config: config)
            try s.prepareTimesteps(steps: 10)
            #expect(s.sigmas?.count == 11, "\(kind)")
            #expect(s.initNoiseSigma == 1, "\(kind)")
            #expect(try s.scaleModelInput([1, -2], timestep: s.timesteps[0]) == [1, -2], "\(kind)")
        }
        for kind in [SchedulerKind.euler, .eulerAncestral, .lms] {
            var s = try makeScheduler(kind: kind, config: config)
            // Before setTimesteps: the training sigmas, noisiest first, and a final 0.
            #expect(s.sigmas?.count == 1001, "\(kind)")
            try s.prepareTimesteps(steps: 10)
            let sigma = try #require(s.sigmas?.first)
            #expect(s.initNoiseSigma == sigma, "\(kind)")
            let scale = (sigma * sigma + 1).squareRoot()
            #expect(try s.scaleModelInput([1, -2], timestep: s.timesteps[0]) == [1 / scale, -2 / scale], "\(kind)")
            #expect(try s.addNoise(original: [1], noise: [2], timestep: s.timesteps[0]) == [1 + 2 * sigma], "\(kind)")
        }
    }

    /// An image-to-image start that keeps no step leaves Heun's begin index past its sigmas.
    @Test func beginIndexPastTheSigmasIsAnError() throws {
        var heun = try HeunDiscreteScheduler(config: SchedulerConfig())
        #expect(try heun.prepareTimesteps(steps: 1, strength: 0.5) == [])
        let pastEnd = SchedulerError.stepPastEnd(scheduler: "HeunDiscreteScheduler", stepIndex: 2)
        #expect(throws: pastEnd) { _ = try heun.addNoise(original: [0], noise: [0], timestep: heun.timesteps[0]) }
        #expect(throws: pastEnd) { _ = try heun.scaleModelInput([0], timestep: heun.timesteps[0]) }
    }

    @Test(arguments: SchedulerKind.allCases)
    func addNoiseChecksTheNoiseSize(kind: SchedulerKind) throws {
        var s = try makeScheduler(kind: kind, config: SchedulerConfig())
        let t = try s.prepareTimesteps(steps: 10)
        #expect(throws: SchedulerError.sizeMismatch(parameter: "noise", expected: 2, actual: 1)) {
            _ = try s.addNoise(original: [0, 0], noise: [0], timestep: t[0])
        }
    }
}
