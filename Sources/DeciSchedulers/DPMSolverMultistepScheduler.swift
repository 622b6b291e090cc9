import DeciRandom
import Foundation

/// DPM-Solver / DPM-Solver++ multistep (Lu et al. 2022), first to third order, in the ODE and SDE
/// variants: "DPM++ 2M" is `dpmsolver++` with order 2, "DPM++ 2M SDE" is `sde-dpmsolver++`, and
/// "Karras" adds `use_karras_sigmas`. Matches diffusers `scheduling_dpmsolver_multistep.py`,
/// including its lower-order final steps.
public struct DPMSolverMultistepScheduler: VPSigmaScheduler, SampleClamping {
    public let settings: ScheduleSettings
    public let algorithm: DPMAlgorithm
    public let solverType: SolverType
    public let solverOrder: Int
    public let lowerOrderFinal: Bool
    public let eulerAtFinal: Bool
    public let sigmaOptions: SigmaOptions
    let lambdaMinClipped: Double
    let betaSchedule: BetaSchedule
    var clamp: SampleClamp

    var timeline: SigmaTimeline
    private var modelOutputs: [[Float]] = []
    private var lowerOrderNums = 0

    public init(config: SchedulerConfig) throws(SchedulerError) {
        sigmaOptions = try SigmaOptions(config: config, scheduler: Self.className)
        if let v = config.varianceType, v == .learned || v == .learnedRange {
            throw .unsupportedOption(scheduler: Self.className, option: "variance_type '\(v.rawValue)'")
        }
        betaSchedule = config.betaSchedule ?? .linear
        settings = try ScheduleSettings(config: config, zeroSNR: .floored, spacing: .linspace)
        let algo = config.algorithmType ?? .dpmSolverPlusPlus
        algorithm = algo == .deis ? .dpmSolverPlusPlus : algo
        let solver = config.solverType ?? .midpoint
        solverType = (solver == .heun) ? .heun : .midpoint
        solverOrder = config.solverOrder ?? 2
        guard (1...3).contains(solverOrder) else {
            throw .invalidConfigValue(key: "solver_order", value: "\(solverOrder)", allowed: ["1", "2", "3"])
        }
        if solverOrder == 3 && algorithm == .sdeDPMSolver {
            throw .unsupportedOption(scheduler: Self.className, option: "solver_order 3 with algorithm_type 'sde-dpmsolver'")
        }
        lowerOrderFinal = config.lowerOrderFinal ?? true
        eulerAtFinal = config.eulerAtFinal ?? false
        if sigmaOptions.finalSigmasType == .zero && (algorithm == .dpmSolver || algorithm == .sdeDPMSolver) {
            throw .invalidConfigValue(key: "final_sigmas_type", value: "zero",
                                      allowed: ["sigma_min (required with algorithm_type '\(algorithm.rawValue)')"])
        }
        lambdaMinClipped = config.lambdaMinClipped ?? -.infinity
        clamp = SampleClamp(config: config, clipSampleDefault: nil)
        timeline = SigmaTimeline(sigmas: settings.schedule.trainSigmas)
    }

    private var isPlusPlus: Bool { algorithm == .dpmSolverPlusPlus || algorithm == .sdeDPMSolverPlusPlus }
    private var isSDE: Bool { algorithm == .sdeDPMSolver || algorithm == .sdeDPMSolverPlusPlus }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        try checkStepCount(steps)
        // Timesteps whose log-SNR falls below lambda_min_clipped are cut from the top.
        let lambdas = schedule.alphasCumprod.map { log32($0.squareRoot()) - log32((1 - $0).squareRoot()) }
        let clipped = lambdas.reversed().filter { $0 < Float(lambdaMinClipped) }.count
        let last = trainSteps - clipped
        var ts = Spacing.multistepTimesteps(timestepSpacing, steps: steps, trainSteps: trainSteps, last: last, offset: stepsOffset)
        let train = schedule.trainSigmas
        var sig: [Double]
        if sigmaOptions.useKarrasSigmas {
            let asc = train.map { Double($0) }
            sig = Sigmas.karras(sigmaMin: asc[0], sigmaMax: asc[asc.count - 1], count: steps)
            let logs = Sigmas.logSigmas(train)
            ts = sig.map { s in
                let t = Sigmas.sigmaToT(s, logSigmas: logs)
                // Rounded except for the cosine schedule; either way numpy's int64 cast truncates.
                return Int(betaSchedule == .squaredcosCapV2 ? t : NumPy.round(t))
            }
        } else {
            let fp = train.map { Double($0) }
            sig = ts.map { NumPy.interpOverIndices(Double($0), fp) }
        }
        timeline = SigmaTimeline(timesteps: ts.map { Float($0) },
                                 sigmas: sig.map { Float($0) } + [schedule.finalSigma(sigmaOptions.finalSigmasType)])
        modelOutputs = []
        lowerOrderNums = 0
    }

    /// The model output as the solver's working quantity: x0 for the ++ variants, epsilon otherwise.
    private func convert(_ output: [Float], sample: [Float], sigma: Float) -> [Float] {
        let (alpha, sigmaT) = Parameterization.alphaSigma(fromVE: sigma)
        if isPlusPlus {
            let x0 = Parameterization.x0(predictionType, output: output, sample: sample, alpha: alpha, sigma: sigmaT)
            return clamp.apply(x0)
        }
        let eps = Parameterization.epsilon(predictionType, output: output, sample: sample, x0: output, alpha: alpha, sigma: sigmaT)
        guard clamp.thresholding else { return eps }
        var x0 = map2(sample, eps) { (s, e) in (s - sigmaT * e) / alpha }
        x0 = clamp.apply(x0)
        return map2(sample, x0) { (s, x) in (s - alpha * x) / sigmaT }
    }

    private func lambda(_ alpha: Float, _ sigma: Float) -> Float { log32(alpha) - log32(sigma) }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        guard !timesteps.isEmpty else { throw .timestepsNotSet(scheduler: className) }
        let i = try stepIndex(modelOutput: modelOutput, sample: sample, timestep: timestep)
        let n = timesteps.count
        let finalLower = i == n - 1 && (eulerAtFinal || (lowerOrderFinal && n < 15) || sigmaOptions.finalSigmasType == .zero)
        let secondLower = i == n - 2 && lowerOrderFinal && n < 15

        let converted = convert(modelOutput, sample: sample, sigma: sigmaSchedule[i])
        modelOutputs.append(converted)
        if modelOutputs.count > solverOrder { modelOutputs.removeFirst() }
        let z: [Float]? = isSDE ? noise.normal(count: sample.count) : nil

        let prev: [Float]
        if solverOrder == 1 || lowerOrderNums < 1 || finalLower {
            prev = firstOrder(converted, sample: sample, i: i, noise: z)
        } else if solverOrder == 2 || lowerOrderNums < 2 || secondLower {
            prev = secondOrder(sample: sample, i: i, noise: z)
        } else {
            prev = thirdOrder(sample: sample, i: i, noise: z)
        }
        if lowerOrderNums < solverOrder { lowerOrderNums += 1 }
        index.step = i + 1
        return SchedulerOutput(prevSample: prev, predOriginalSample: isPlusPlus ? converted : nil)
    }

    private func firstOrder(_ m: [Float], sample: [Float], i: Int, noise: [Float]?) -> [Float] {
        let (alphaT, sigmaT) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i + 1])
        let (alphaS, sigmaS) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i])
        let h = lambda(alphaT, sigmaT) - lambda(alphaS, sigmaS)
        switch algorithm {
        case .dpmSolverPlusPlus, .deis:
            return combine((sigmaT / sigmaS, sample), (-(alphaT * (exp32(-h) - 1)), m))
        case .dpmSolver:
            return combine((alphaT / alphaS, sample), (-(sigmaT * (exp32(h) - 1)), m))
        case .sdeDPMSolverPlusPlus:
            return combine((sigmaT / sigmaS * exp32(-h), sample), (alphaT * (1 - exp32(-2 * h)), m),
                           (sigmaT * (1 - exp32(-2 * h)).squareRoot(), noise ?? sample))
        case .sdeDPMSolver:
            return combine((alphaT / alphaS, sample), (-(2 * (sigmaT * (exp32(h) - 1))), m),
                           (sigmaT * (exp32(2 * h) - 1).squareRoot(), noise ?? sample))
        }
    }

    private func secondOrder(sample: [Float], i: Int, noise: [Float]?) -> [Float] {
        let (alphaT, sigmaT) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i + 1])
        let (alphaS0, sigmaS0) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i])
        let (alphaS1, sigmaS1) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i - 1])
        let lambdaT = lambda(alphaT, sigmaT), lambdaS0 = lambda(alphaS0, sigmaS0), lambdaS1 = lambda(alphaS1, sigmaS1)
        let m0 = modelOutputs[modelOutputs.count - 1], m1 = modelOutputs[modelOutputs.count - 2]
        let h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1
        let r0 = h0 / h
        let d0 = m0
        let invR0 = 1 / r0
        let d1 = map2(m0, m1) { (a, b) in invR0 * (a - b) }
        let z = noise ?? sample
        switch (algorithm, solverType) {
        case (.dpmSolverPlusPlus, .heun), (.deis, .heun):
            return combine((sigmaT / sigmaS0, sample), (-(alphaT * (exp32(-h) - 1)), d0),
                           (alphaT * ((exp32(-h) - 1) / h + 1), d1))
        case (.dpmSolverPlusPlus, _), (.deis, _):
            return combine((sigmaT / sigmaS0, sample), (-(alphaT * (exp32(-h) - 1)), d0),
                           (-(0.5 * (alphaT * (exp32(-h) - 1))), d1))
        case (.dpmSolver, .heun):
            return combine((alphaT / alphaS0, sample), (-(sigmaT * (exp32(h) - 1)), d0),
                           (-(sigmaT * ((exp32(h) - 1) / h - 1)), d1))
        case (.dpmSolver, _):
            return combine((alphaT / alphaS0, sample), (-(sigmaT * (exp32(h) - 1)), d0),
                           (-(0.5 * (sigmaT * (exp32(h) - 1))), d1))
        case (.sdeDPMSolverPlusPlus, .heun):
            return combine((sigmaT / sigmaS0 * exp32(-h), sample), (alphaT * (1 - exp32(-2 * h)), d0),
                           (alphaT * ((1 - exp32(-2 * h)) / (-2 * h) + 1), d1),
                           (sigmaT * (1 - exp32(-2 * h)).squareRoot(), z))
        case (.sdeDPMSolverPlusPlus, _):
            return combine((sigmaT / sigmaS0 * exp32(-h), sample), (alphaT * (1 - exp32(-2 * h)), d0),
                           (0.5 * (alphaT * (1 - exp32(-2 * h))), d1),
                           (sigmaT * (1 - exp32(-2 * h)).squareRoot(), z))
        case (.sdeDPMSolver, .heun):
            return combine((alphaT / alphaS0, sample), (-(2 * (sigmaT * (exp32(h) - 1))), d0),
                           (-(2 * (sigmaT * ((exp32(h) - 1) / h - 1))), d1),
                           (sigmaT * (exp32(2 * h) - 1).squareRoot(), z))
        case (.sdeDPMSolver, _):
            return combine((alphaT / alphaS0, sample), (-(2 * (sigmaT * (exp32(h) - 1))), d0),
                           (-(sigmaT * (exp32(h) - 1)), d1),
                           (sigmaT * (exp32(2 * h) - 1).squareRoot(), z))
        }
    }

    private func thirdOrder(sample: [Float], i: Int, noise: [Float]?) -> [Float] {
        let (alphaT, sigmaT) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i + 1])
        let (alphaS0, sigmaS0) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i])
        let (alphaS1, sigmaS1) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i - 1])
        let (alphaS2, sigmaS2) = Parameterization.alphaSigma(fromVE: sigmaSchedule[i - 2])
        let lambdaT = lambda(alphaT, sigmaT), lambdaS0 = lambda(alphaS0, sigmaS0)
        let lambdaS1 = lambda(alphaS1, sigmaS1), lambdaS2 = lambda(alphaS2, sigmaS2)
        let c = modelOutputs.count
        let m0 = modelOutputs[c - 1], m1 = modelOutputs[c - 2], m2 = modelOutputs[c - 3]
        let h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1, h1 = lambdaS1 - lambdaS2
        let r0 = h0 / h, r1 = h1 / h
        let invR0 = 1 / r0, invR1 = 1 / r1
        let d10 = map2(m0, m1) { (a, b) in invR0 * (a - b) }
        let d11 = map2(m1, m2) { (a, b) in invR1 * (a - b) }
        let w1 = r0 / (r0 + r1), w2 = 1 / (r0 + r1)
        let diff = map2(d10, d11) { (a, b) in a - b }
        let d1 = map2(d10, diff) { (a, d) in a + w1 * d }
        let d2 = map1(diff) { w2 * $0 }
        switch algorithm {
        case .dpmSolverPlusPlus, .deis:
            return combine((sigmaT / sigmaS0, sample), (-(alphaT * (exp32(-h) - 1)), m0),
                           (alphaT * ((exp32(-h) - 1) / h + 1), d1),
                           (-(alphaT * ((exp32(-h) - 1 + h) / (h * h) - 0.5)), d2))
        case .dpmSolver:
            return combine((alphaT / alphaS0, sample), (-(sigmaT * (exp32(h) - 1)), m0),
                           (-(sigmaT * ((exp32(h) - 1) / h - 1)), d1),
                           (-(sigmaT * ((exp32(h) - 1 - h) / (h * h) - 0.5)), d2))
        case .sdeDPMSolverPlusPlus, .sdeDPMSolver:
            // sde-dpmsolver is refused at order 3 in init, as diffusers has no update for it.
            return combine((sigmaT / sigmaS0 * exp32(-h), sample), (alphaT * (1 - exp32(-2 * h)), m0),
                           (alphaT * ((1 - exp32(-2 * h)) / (-2 * h) + 1), d1),
                           (alphaT * ((1 - exp32(-2 * h) - 2 * h) / ((2 * h) * (2 * h)) - 0.5), d2),
                           (sigmaT * (1 - exp32(-2 * h)).squareRoot(), noise ?? sample))
        }
    }
}
