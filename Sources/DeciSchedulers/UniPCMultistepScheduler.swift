import DeciRandom
import Foundation

/// UniPC (Zhao et al. 2023): a multistep predictor (UniP) plus a corrector (UniC) that reuses the
/// next model evaluation, with the B(h) variants bh1/bh2. Matches diffusers
/// `scheduling_unipc_multistep.py` (without its optional `solver_p` override).
public struct UniPCMultistepScheduler: VPSigmaScheduler, SampleClamping {
    public let settings: ScheduleSettings
    public let solverOrder: Int
    public let solverType: SolverType
    public let predictX0: Bool
    public let lowerOrderFinal: Bool
    public let disableCorrector: [Int]
    public let sigmaOptions: SigmaOptions
    var clamp: SampleClamp

    var timeline: SigmaTimeline
    private var modelOutputs: [[Float]] = []
    private var lowerOrderNums = 0
    private var lastSample: [Float]?
    private var thisOrder = 0

    public init(config: SchedulerConfig) throws(SchedulerError) {
        sigmaOptions = try SigmaOptions(config: config, scheduler: Self.className)
        settings = try ScheduleSettings(config: config, zeroSNR: .floored, spacing: .linspace)
        solverOrder = config.solverOrder ?? 2
        guard solverOrder >= 1 else {
            throw .invalidConfigValue(key: "solver_order", value: "\(solverOrder)", allowed: ["an integer >= 1"])
        }
        let solver = config.solverType ?? .bh2
        solverType = solver == .bh1 ? .bh1 : .bh2
        predictX0 = config.predictX0 ?? true
        lowerOrderFinal = config.lowerOrderFinal ?? true
        disableCorrector = config.disableCorrector ?? []
        clamp = SampleClamp(config: config, clipSampleDefault: nil)
        timeline = SigmaTimeline(sigmas: settings.schedule.trainSigmas)
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        try checkStepCount(steps)
        var ts = Spacing.multistepTimesteps(timestepSpacing, steps: steps, trainSteps: trainSteps, last: trainSteps, offset: stepsOffset)
        let train = schedule.trainSigmas
        var sig: [Double]
        let final: Float
        if sigmaOptions.useKarrasSigmas {
            let asc = train.map { Double($0) }
            sig = Sigmas.karras(sigmaMin: sigmaOptions.sigmaMin ?? asc[0], sigmaMax: sigmaOptions.sigmaMax ?? asc[asc.count - 1],
                                count: steps)
            let logs = Sigmas.logSigmas(train)
            ts = sig.map { Int(NumPy.round(Sigmas.sigmaToT($0, logSigmas: logs))) }
            final = sigmaOptions.finalSigmasType == .zero ? 0 : Float(sig[sig.count - 1])
        } else {
            let fp = train.map { Double($0) }
            sig = ts.map { NumPy.interpOverIndices(Double($0), fp) }
            final = schedule.finalSigma(sigmaOptions.finalSigmasType)
        }
        timeline = SigmaTimeline(timesteps: ts.map { Float($0) }, sigmas: sig.map { Float($0) } + [final])
        modelOutputs = []
        lowerOrderNums = 0
        lastSample = nil
        thisOrder = 0
    }

    private func lambda(_ sigma: Float) -> (alpha: Float, sigma: Float, lambda: Float) {
        let (a, s) = Parameterization.alphaSigma(fromVE: sigma)
        return (a, s, log32(a) - log32(s))
    }

    private func convert(_ output: [Float], sample: [Float], sigma: Float) -> [Float] {
        let (alpha, sigmaT) = Parameterization.alphaSigma(fromVE: sigma)
        if predictX0 {
            let x0 = Parameterization.x0(predictionType, output: output, sample: sample, alpha: alpha, sigma: sigmaT)
            return clamp.apply(x0)
        }
        return Parameterization.epsilon(predictionType, output: output, sample: sample, x0: output, alpha: alpha, sigma: sigmaT)
    }

    /// The phi-function right-hand side b and B(h) of the UniPC linear systems, for `order` terms.
    private func coefficients(h: Float, order: Int) -> (hPhi1: Float, bh: Float, b: [Float]) {
        let hh = predictX0 ? -h : h
        let hPhi1 = expm132(hh)
        var hPhiK = hPhi1 / hh - 1
        var factorial = 1
        let bh = solverType == .bh1 ? hh : expm132(hh)
        var b: [Float] = []
        for i in 1...max(order, 1) {
            b.append(hPhiK * Float(factorial) / bh)
            factorial *= i + 1
            hPhiK = hPhiK / hh - Float(1.0 / Double(factorial))
        }
        return (hPhi1, bh, b)
    }

    /// Solves R x = b, R[i][k] = rks[k]^i (entries rounded to float32 as torch.pow makes them), by
    /// Gaussian elimination with partial pivoting in Double, rounding the solution to float32.
    private func solveVandermonde(_ rks: [Float], _ b: [Float]) -> [Float] {
        let n = b.count
        var a: [[Double]] = (0..<n).map { i in
            (0..<n).map { k in
                var p: Float = 1
                for _ in 0..<i { p *= rks[k] }
                return Double(p)
            }
        }
        var x = b.map { Double($0) }
        for col in 0..<n {
            var pivot = col
            for r in (col + 1)..<n where abs(a[r][col]) > abs(a[pivot][col]) { pivot = r }
            a.swapAt(col, pivot)
            x.swapAt(col, pivot)
            for r in (col + 1)..<n {
                let f = a[r][col] / a[col][col]
                for k in col..<n { a[r][k] -= f * a[col][k] }
                x[r] -= f * x[col]
            }
        }
        for col in stride(from: n - 1, through: 0, by: -1) {
            var s = x[col]
            for k in (col + 1)..<n { s -= a[col][k] * x[k] }
            x[col] = s / a[col][col]
        }
        return x.map { Float($0) }
    }

    /// What UniP and UniC share for the step from sigma index `s` to `s + 1`: the first-order
    /// update of `x` (diffusers' `x_t_`), the log-SNR ratios `rks` (ending in 1) and scaled
    /// differences `d1s` of the last `order - 1` outputs, and the B(h) system's `b` and scale.
    private func update(from s: Int, sample x: [Float], order: Int)
        -> (base: [Float], rks: [Float], d1s: [[Float]], b: [Float], scale: Float) {
        let m0 = modelOutputs[modelOutputs.count - 1]
        let t = lambda(sigmaSchedule[s + 1]), s0 = lambda(sigmaSchedule[s])
        let h = t.lambda - s0.lambda
        var rks: [Float] = []
        var d1s: [[Float]] = []
        if order > 1 {
            for k in 1..<order {
                let mi = modelOutputs[modelOutputs.count - 1 - k]
                let rk = (lambda(sigmaSchedule[s - k]).lambda - s0.lambda) / h
                rks.append(rk)
                d1s.append(map2(mi, m0) { (a, b) in (a - b) / rk })
            }
        }
        rks.append(1)
        let (hPhi1, bh, b) = coefficients(h: h, order: order)
        let base = predictX0
            ? combine((t.sigma / s0.sigma, x), (-(t.alpha * hPhi1), m0))
            : combine((t.alpha / s0.alpha, x), (-(t.sigma * hPhi1), m0))
        return (base, rks, d1s, b, (predictX0 ? t.alpha : t.sigma) * bh)
    }

    private func predictor(sample x: [Float], order: Int) -> [Float] {
        let u = update(from: index.step ?? 0, sample: x, order: order)
        guard !u.d1s.isEmpty else { return u.base }
        let rhos = order == 2 ? [Float(0.5)] : solveVandermonde(Array(u.rks.dropLast()), Array(u.b.dropLast()))
        let res = weightedSum(rhos, u.d1s)
        return map2(u.base, res) { (a, r) in a - u.scale * r }
    }

    private func corrector(output modelT: [Float], lastSample x: [Float], thisSample: [Float], order: Int) -> [Float] {
        let u = update(from: (index.step ?? 0) - 1, sample: x, order: order)
        let rhos = order == 1 ? [Float(0.5)] : solveVandermonde(u.rks, u.b)
        let d1t = map2(modelT, modelOutputs[modelOutputs.count - 1]) { (a, b) in a - b }
        let last = rhos[rhos.count - 1]
        let corr: [Float] = u.d1s.isEmpty
            ? map1(d1t) { last * $0 }
            : map2(weightedSum(Array(rhos.dropLast()), u.d1s), d1t) { (c, d) in c + last * d }
        return map2(u.base, corr) { (a, c) in a - u.scale * c }
    }

    /// einsum("k,bkc...->bc...", rhos, D1s): a weighted sum over k.
    private func weightedSum(_ w: [Float], _ vs: [[Float]]) -> [Float] {
        var acc = map1(vs[0]) { w[0] * $0 }
        for k in 1..<min(w.count, vs.count) {
            let wk = w[k]
            acc = map2(acc, vs[k]) { (a, v) in a + wk * v }
        }
        return acc
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        guard !timesteps.isEmpty else { throw .timestepsNotSet(scheduler: className) }
        let i = try stepIndex(modelOutput: modelOutput, sample: sample, timestep: timestep)
        index.step = i
        let converted = convert(modelOutput, sample: sample, sigma: sigmaSchedule[i])
        var sample = sample
        if i > 0, !disableCorrector.contains(i - 1), let last = lastSample {
            sample = corrector(output: converted, lastSample: last, thisSample: sample, order: thisOrder)
        }
        modelOutputs.append(converted)
        if modelOutputs.count > solverOrder { modelOutputs.removeFirst() }
        let wanted = lowerOrderFinal ? min(solverOrder, timesteps.count - i) : solverOrder
        thisOrder = min(wanted, lowerOrderNums + 1)
        lastSample = sample
        let prev = predictor(sample: sample, order: thisOrder)
        if lowerOrderNums < solverOrder { lowerOrderNums += 1 }
        index.step = i + 1
        return SchedulerOutput(prevSample: prev)
    }
}
