"""How closely hlm's inference agrees with R (lme4, lmerTest, pbkrtest, performance).

Prints the largest discrepancy per quantity over the reference cases stored in
tests/fixtures/inference (made by tests/fixtures/inference/make_inference_refs.R).  t/F
quantities, R-squared and predictions are evaluated at lme4's own theta, so that they
measure the computations and not the optimizers; likelihood-ratio statistics and profile
intervals use hlm's fits.  Run from the repository root:

    PYTHONPATH=src python benchmarks/inference_agreement.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import hlm  # noqa: E402
from _inference_refs import (  # noqa: E402
    at_theta,
    cases,
    data,
    fit,
    name_map,
    strs,
    term_map,
    vec,
)


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def main() -> None:
    warnings.simplefilter("ignore")
    out = {}
    worst = {"satterthwaite": 0.0, "kenward_roger": 0.0}
    for c in cases("ttests").values():
        for method in ("REML", "ML"):
            res = fit(c["data"], c["formula"], method)
            ex = at_theta(res, c[method]["theta"])
            for ddf in ("satterthwaite", "kenward_roger"):
                if ddf not in c[method]:
                    continue
                ref = c[method][ddf]
                names = name_map(strs(ref["names"]), list(res.fixef.index), data(c["data"]))
                tab = ex.fixef_table(df=ddf.replace("_", "-")).loc[
                    [names[n] for n in strs(ref["names"])]
                ]
                worst[ddf] = max(worst[ddf], rel(tab["df"], vec(ref["df"])))
    out["t tests: max rel. error of df, Satterthwaite (lmerTest)"] = worst["satterthwaite"]
    out["t tests: max rel. error of df, Kenward-Roger (pbkrtest)"] = worst["kenward_roger"]
    w3 = 0.0
    for c in cases("ftests", "type3").values():
        res = at_theta(fit(c["data"], c["formula"]), c["theta"])
        for ddf in ("satterthwaite", "kenward_roger"):
            tab = res.anova(df=ddf.replace("_", "-"))
            tm = term_map(strs(c[ddf]["terms"]), list(tab.index))
            tab = tab.loc[[tm[t] for t in strs(c[ddf]["terms"])]]
            w3 = max(w3, rel(tab["F"], vec(c[ddf]["F"])), rel(tab["den_df"], vec(c[ddf]["den_df"])))
    out["type III F tables: max rel. error of F and DenDF"] = w3
    lrt = 0.0
    for c in cases("lrt").values():
        fits = [
            fit(c["data"], f) if "|" in f else hlm.ols(f, data(c["data"])) for f in c["formulas"]
        ]
        t = hlm.anova(*fits)
        chisq = vec([np.nan if v is None else v for v in c["chisq"]])
        lrt = max(lrt, float(np.nanmax(np.abs(t["chisq"].to_numpy()[1:] - chisq[1:]))))
    out["LRT: max abs. error of the chi-square statistic"] = lrt
    prof = 0.0
    for c in cases("profile").values():
        res = fit(c["data"], c["formula"])
        ci = res.confint("profile")
        lo, hi = vec(c["lower"]), vec(c["upper"])
        width = hi - lo
        prof = max(
            prof,
            float(np.max(np.abs(ci["lower"] - lo) / width)),
            float(np.max(np.abs(ci["upper"] - hi) / width)),
        )
    out["profile intervals (lme4): max |difference| / interval width"] = prof
    r2 = 0.0
    for c in cases("r2").values():
        res = at_theta(fit(c["data"], c["formula"]), c["theta"]).r2()
        r2 = max(
            r2,
            *(rel(res[k], c[k]) for k in ("var_fixed", "var_random", "var_residual") if c[k] != 0),
        )
    out["R2 variance parts (R by hand): max rel. error"] = r2
    pr = 0.0
    for c in cases("predict").values():
        res = at_theta(fit(c["data"], c["formula"]), c["theta"])
        nd = pd.DataFrame(c["newdata"])
        pr = max(
            pr,
            rel(res.predict(nd), vec(c["predict"])),
            rel(res.predict_interval(nd)["se"], vec(c["se_prediction"])),
        )
    out["predictions and their SEs: max rel. error"] = pr
    for k, v in out.items():
        print(f"{k:<62} {v:.2e}")


if __name__ == "__main__":
    main()
