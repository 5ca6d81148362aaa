import{u as r,Q as u}from"./c-api-DUecWjXX.js";function a(e,s){return r(e,u)}export{a as u};
