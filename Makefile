# Thin wrapper: the lab itself is `npx kflex-lab`; these are the common entry points.
PROFILE ?= smoke

.PHONY: deps reproduce test test-e2e bench doctor plan clean
deps:
	sudo bash .ci/install-deps
	npm ci
reproduce:
	npx kflex-lab reproduce --profile $(PROFILE)
doctor:
	npx kflex-lab doctor --profile $(PROFILE)
plan:
	npx kflex-lab plan --profile $(PROFILE)
test:
	npm test
test-e2e:
	npm run test:e2e
bench:
	npm run bench
clean:
	npx kflex-lab clean
