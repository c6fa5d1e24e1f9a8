# longer / hotter RLOO for the stepping stones on d6
import proto, json
m, tok, _ = proto.load("d6")
ev = {"add-hard": proto.problems("add-c4+", 50, "heldout"), "sub-hard": proto.problems("sub-b4+", 50, "heldout")}
data = proto.datasets("d6", m, tok)
out = []
for lr, steps in ((3e-3, 10), (1e-3, 30), (3e-3, 30)):
    for kind in ("add-c1", "sub-b1", "oracle"):
        acc, succ = proto.rloo_student("d6", data[kind], lr, 0, ev, steps=steps)
        out.append(dict(lr=lr, steps=steps, kind=kind, acc=acc, successes=succ))
        print(out[-1], flush=True)
json.dump(out, open("d6/probe2.json", "w"), indent=1)
