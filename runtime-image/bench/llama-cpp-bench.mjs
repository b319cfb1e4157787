// llama.cpp's prompt and decode speed on one GGUF, for ./stowage bench-engine --llama-cpp.
// Uses node-llama-cpp's prebuilt CPU binaries (pinned in package.json; `npm install` here first) with the
// same threads, the same number of random prompt tokens (one batch) and the same number of greedy
// single-token decode steps as the Java benchmark. Prints one JSON line on stdout.
//
//   node llama-cpp-bench.mjs --model M.gguf --threads 2 --prompt-tokens 128 --decode-tokens 32
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function args() {
    const a = {threads: 1, "prompt-tokens": 128, "decode-tokens": 32};
    const argv = process.argv.slice(2);
    for (let i = 0; i < argv.length; i += 2) {
        if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
            throw new Error(`bad argument '${argv[i]}': use --model M --threads N --prompt-tokens P --decode-tokens D`);
        }
        a[argv[i].slice(2)] = argv[i + 1];
    }
    if (!a.model) throw new Error("--model is required");
    return {model: a.model, threads: +a.threads, prompt: +a["prompt-tokens"], decode: +a["decode-tokens"]};
}

// A fixed xorshift so every run feeds the same "random" prompt.
function randomTokens(n, vocab, seed) {
    let x = BigInt(seed) | 1n;
    const out = [];
    for (let i = 0; i < n; i++) {
        x ^= (x << 13n) & 0xffffffffffffffffn;
        x ^= x >> 7n;
        x ^= (x << 17n) & 0xffffffffffffffffn;
        out.push(3 + Number(x % BigInt(vocab - 3)));
    }
    return out;
}

function version() {
    const read = (p) => JSON.parse(readFileSync(new URL(p, import.meta.url), "utf8"));
    try {
        const pkg = read("./node_modules/node-llama-cpp/package.json");
        const info = read("./node_modules/node-llama-cpp/llama/llama.cpp.info.json");
        return `node-llama-cpp ${pkg.version} (${info.llamaCppGithubRepo} ${info.tag})`;
    } catch (e) {
        return "node-llama-cpp (version unknown)";
    }
}

const a = args();
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: a.model, gpuLayers: 0, useMmap: true});
const context = await model.createContext({
    contextSize: Math.max(256, a.prompt + a.decode + 16),
    batchSize: a.prompt,
    threads: a.threads,
    sequences: 1,
});
const vocab = model.fileInfo?.metadata?.llama?.vocab_size ?? model.tokens?.vocabularySize ?? 32000;

async function run(seed) {
    const seq = context.getSequence();
    const prompt = randomTokens(a.prompt, vocab, seed);
    const t0 = process.hrtime.bigint();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    const t1 = process.hrtime.bigint();
    let n = 0;
    const t2 = process.hrtime.bigint();
    // Greedy; the first generated token needs one decode step after the prompt, like the Java loop.
    for await (const token of seq.evaluate([prompt[prompt.length - 1]], {temperature: 0})) {
        if (++n >= a.decode) break;
    }
    const t3 = process.hrtime.bigint();
    seq.dispose();
    return {promptNs: Number(t1 - t0), decodeNs: Number(t3 - t2), steps: n};
}

await run(1); // warm-up: page the weights in
const r = await run(7);
console.log(JSON.stringify({
    llamaCpp: version(),
    threads: a.threads,
    promptTokens: a.prompt,
    decodeTokens: r.steps,
    promptTokensPerSecond: a.prompt * 1e9 / r.promptNs,
    decodeTokensPerSecond: r.steps * 1e9 / r.decodeNs,
}));
await context.dispose();
await model.dispose();
